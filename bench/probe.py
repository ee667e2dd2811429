"""Reads what the benchmark measures about a server from /proc.

  probe.py cpu PID     CPU seconds (utime+stime, plus reaped children's) of PID's process tree
  probe.py pss PID     PSS in KiB summed over PID's process tree (smaps_rollup)
  probe.py procs PID   number of processes in PID's tree
  probe.py busy        CPU seconds the whole machine has been busy, and stolen by the hypervisor
                       (all CPUs, /proc/stat)

Zombies are included (their times are still theirs until reaped); a process that exits
between listing and reading is skipped.
"""

import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # The command name may hold spaces and parentheses: split after the last ')'.
    rest = raw[raw.rindex(b")") + 2 :].split()
    return rest  # rest[0] is field 3 (state)


def tree(root):
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(stat_fields(name)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu(root):
    total = 0
    for p in tree(root):
        try:
            f = stat_fields(p)
        except (OSError, ValueError):
            continue
        # fields 14-17 (utime, stime, cutime, cstime) are rest[11..14]
        total += sum(int(x) for x in f[11:15])
    return total / TICK


def pss(root):
    total = 0
    for p in tree(root):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def busy():
    """(busy, steal): CPU seconds the machine's CPUs ran something, and seconds a hypervisor
    took from them (steal: other virtual machines on the host; not counted as busy)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


def main():
    what = sys.argv[1]
    if what == "busy":
        b, st = busy()
        print(f"{b:.2f} {st:.2f}")
        return
    pid = int(sys.argv[2])
    if what == "cpu":
        print(f"{cpu(pid):.3f}")
    elif what == "pss":
        print(pss(pid))
    elif what == "procs":
        print(len(tree(pid)))
    else:
        sys.exit(f"unknown probe {what}")


if __name__ == "__main__":
    main()
