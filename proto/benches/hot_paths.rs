//! Criterion benchmarks of wharf-proto's hot paths: command parsing, reply encoding and
//! listing formatting. Run with `cargo bench -p wharf-proto`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use wharf_proto::listing::{self, Entry, Facts, Kind};
use wharf_proto::{Code, LineFramer, Reply, command};

/// A session's worth of typical control lines, as clients send them.
const LINES: &[&[u8]] = &[
    b"USER anonymous",
    b"PASS bench@example.com",
    b"SYST",
    b"FEAT",
    b"OPTS UTF8 ON",
    b"PWD",
    b"TYPE I",
    b"CWD /pub/releases/2026",
    b"EPSV",
    b"PASV",
    b"SIZE wharf-0.1.0-x86_64-unknown-linux-gnu.tar.gz",
    b"MDTM wharf-0.1.0-x86_64-unknown-linux-gnu.tar.gz",
    b"REST 1048576",
    b"RETR wharf-0.1.0-x86_64-unknown-linux-gnu.tar.gz",
    b"STOR upload/scan 0042 (copy).pdf",
    b"MLSD",
    b"LIST -la",
    b"MFMT 20261123170000 photo.jpg",
    b"EPRT |1|127.0.0.1|50123|",
    b"PORT 127,0,0,1,195,211",
    b"NOOP",
    b"DELE old.log",
    b"RNFR a.txt",
    b"RNTO b.txt",
    b"QUIT",
];

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("command");
    g.throughput(Throughput::Elements(LINES.len() as u64));
    g.bench_function("parse_mix", |b| {
        b.iter(|| {
            for l in LINES {
                let _ = black_box(command::parse(black_box(l)));
            }
        })
    });
    // Framing the same lines as one CRLF stream, then parsing each.
    let stream: Vec<u8> = LINES
        .iter()
        .flat_map(|l| l.iter().copied().chain(*b"\r\n"))
        .collect();
    g.bench_function("frame_and_parse_mix", |b| {
        b.iter_batched(
            LineFramer::default,
            |mut f| {
                let mut input = black_box(stream.as_slice());
                while !input.is_empty() {
                    let (used, frame) = f.push(input);
                    input = &input[used..];
                    if let Some(wharf_proto::Frame::Line(l)) = frame {
                        let _ = black_box(command::parse(&l));
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn replies(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    let single = Reply::new(Code::ClosingData, "Transfer complete.");
    let pasv = Reply::new(
        Code::PassiveMode,
        "Entering Passive Mode (127,0,0,1,195,211).",
    );
    let feat = Reply::multi(
        Code::SystemStatus,
        [
            "Features:",
            " EPRT",
            " EPSV",
            " HOST",
            " MDTM",
            " MFMT",
            " MLST type*;size*;modify*;perm*;unique*;",
            " REST STREAM",
            " SIZE",
            " TVFS",
            " UTF8",
            "End",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
    );
    let mut out = Vec::with_capacity(1024);
    for (name, r) in [
        ("single_226", &single),
        ("single_227", &pasv),
        ("multi_feat", &feat),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(r).encode(&mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

/// 10,000 entries like a real directory: mostly files of varied sizes and ages, some
/// directories, a few links.
fn entries(n: usize) -> Vec<Entry> {
    let now = 1_795_000_000i64;
    (0..n)
        .map(|i| Entry {
            name: format!("file-{i:05}-{}.dat", i * 7919 % 10007).into_bytes(),
            kind: match i % 50 {
                0 => Kind::Dir,
                1 => Kind::Symlink,
                _ => Kind::File,
            },
            size: (i as u64 * 104_729) % 5_000_000_000,
            // Half within six months (HH:MM), half older (year).
            mtime: now - (i as i64 * 3_600 * 7),
            mode: if i % 50 == 0 { 0o755 } else { 0o644 },
            nlink: 1,
            unique: (2049, 1_000_000 + i as u64),
        })
        .collect()
}

fn listings(c: &mut Criterion) {
    let es = entries(10_000);
    let now = 1_795_000_000i64;
    let mut g = c.benchmark_group("listing_10k");
    g.throughput(Throughput::Elements(es.len() as u64));
    let mut out = Vec::with_capacity(1 << 20);
    g.bench_function("list_line", |b| {
        b.iter(|| {
            out.clear();
            for e in &es {
                listing::list_line(black_box(e), now, &mut out);
            }
            black_box(out.len())
        })
    });
    let facts = Facts::default();
    g.bench_function("facts_line", |b| {
        b.iter(|| {
            out.clear();
            for e in &es {
                listing::facts_line(black_box(e), facts, b"adfrw", &e.name, &mut out);
                out.extend_from_slice(b"\r\n");
            }
            black_box(out.len())
        })
    });
    g.bench_function("nlst_line", |b| {
        b.iter(|| {
            out.clear();
            for e in &es {
                listing::nlst_line(black_box(&e.name), &mut out);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, parsing, replies, listings);
criterion_main!(benches);
