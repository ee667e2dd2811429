"""pyftpdlib for wharf's benchmark: anonymous read/write on ROOT, explicit FTPS offered.

Usage: pyftpd.py PORT ROOT PASV_LOW PASV_HIGH CERT KEY [HOST]

HOST is the address to listen on (default 127.0.0.1); PASV announces the address the client
connected to.

The default single-process async FTPServer, as pyftpdlib's documentation starts it, with
its connection caps lifted (the default max_cons of 512 would refuse the idle scenarios)
and logging at WARNING (at INFO it writes a line per command to stderr).
"""

import logging
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    port, root, low, high, cert, key = sys.argv[1:7]
    host = sys.argv[7] if len(sys.argv) > 7 else "127.0.0.1"
    logging.basicConfig(level=logging.WARNING)
    auth = DummyAuthorizer()
    auth.add_anonymous(root, perm="elradfmwMT")
    handler = TLS_FTPHandler
    handler.authorizer = auth
    handler.certfile = cert
    handler.keyfile = key
    handler.tls_control_required = False
    handler.tls_data_required = False
    handler.passive_ports = range(int(low), int(high) + 1)
    handler.timeout = 600
    server = FTPServer((host, int(port)), handler)
    server.max_cons = 0
    server.max_cons_per_ip = 0
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main()
