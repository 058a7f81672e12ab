//! Sealing one hour of stereo G.711 and exporting it to WAV, against references measured in the
//! same run: raw ChaCha20-Poly1305 over the same bytes in the same 1 s pieces (what sealing cannot
//! go below), and a plain hound WAV write of the same number of samples plus a memcpy of the WAV's
//! size (what exporting cannot go below).
//!
//! Targets (issue "sealed recording format"): bytes overhead ≤ 2 % at 1 s segments, sealing
//! < 20 µs of CPU per call-second, export of 1 h < 1 s.
//!
//! `cargo bench -p callseal-recording` prints the figures first, then criterion's statistics
//! for one call-minute of each operation.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark: a panic is the report

use callseal_recording::export::{Channels, export_wav};
use callseal_recording::keys::{DataKey, EpochId, RecordingId};
use callseal_recording::primitives::chacha20poly1305_seal;
use callseal_recording::{Leg, Reader, Writer, WriterConfig};
use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

const FRAMES_PER_SECOND: u32 = 50; // 20 ms G.711 packets
const PAYLOAD: usize = 160;

/// Pseudo-random µ-law bytes (xorshift), so nothing compresses or short-circuits.
fn audio(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Seals `seconds` of a stereo call into `sink`; returns the sink.
fn seal<W: Write>(sink: W, seconds: u32, pool: &[u8]) -> W {
    let key = DataKey::from_bytes([7; 32]);
    let mut w = Writer::new(
        sink,
        &key,
        RecordingId::from_bytes([1; 16]),
        EpochId(20_454),
        WriterConfig::default(),
    )
    .unwrap();
    let jitter = [0u64, 2, 1, 3, 0, 1, 2];
    for i in 0..seconds * FRAMES_PER_SECOND {
        let ms = 20 * u64::from(i);
        let j = jitter[i as usize % jitter.len()];
        let at = (i as usize * 37) % (pool.len() - PAYLOAD);
        let payload = &pool[at..at + PAYLOAD];
        w.push_frame(
            Leg::Caller,
            160 * i,
            Duration::from_millis(ms + j),
            0,
            payload,
        )
        .unwrap();
        w.push_frame(
            Leg::Consultant,
            90_000 + 160 * i,
            Duration::from_millis(ms + 3 - j.min(3)),
            8,
            payload,
        )
        .unwrap();
    }
    w.finish().unwrap()
}

/// A sink that only counts.
struct Count(u64);
impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// CPU time of this thread (Linux schedstat, ns), or wall time where unavailable.
fn cpu_now() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_else(|| {
            static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            START.get_or_init(Instant::now).elapsed()
        })
}

/// The best of `reps` runs of `f`, in CPU time.
fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut out = None;
    let mut best = Duration::MAX;
    for _ in 0..reps {
        let t0 = cpu_now();
        let r = f();
        best = best.min(cpu_now() - t0);
        out = Some(r);
    }
    (best, out.unwrap())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn figures(pool: &[u8]) -> Vec<u8> {
    let hour = 3600;
    let payload_bytes = u64::from(hour * FRAMES_PER_SECOND) * 2 * PAYLOAD as u64;

    let (t_seal, counted) = best(3, || seal(Count(0), hour, pool).0);
    // Reference: ChaCha20-Poly1305 alone over the same plaintext volume, in 1 s pieces.
    let piece = audio(2 * PAYLOAD * FRAMES_PER_SECOND as usize);
    let (t_ref, _) = best(3, || {
        let mut buf = piece.clone();
        for i in 0..hour {
            let mut nonce = [0u8; 12];
            nonce[3..7].copy_from_slice(&i.to_be_bytes());
            black_box(chacha20poly1305_seal(&[7; 32], &nonce, &[0; 36], &mut buf));
        }
    });
    let per_call_second = t_seal.as_secs_f64() * 1e6 / f64::from(hour);
    let overhead = (counted - payload_bytes) as f64 / payload_bytes as f64 * 100.0;
    println!("== callseal-recording: 1 h of stereo G.711 (20 ms frames, 1 s segments) ==");
    println!(
        "seal:     {:8.1} ms CPU = {:6.2} µs per call-second (target < 20 µs); raw ChaCha20-Poly1305 over the same bytes {:6.1} ms, ratio {:.2}",
        ms(t_seal),
        per_call_second,
        ms(t_ref),
        t_seal.as_secs_f64() / t_ref.as_secs_f64()
    );
    println!(
        "size:     {} bytes for {} bytes of audio: overhead {:.3} % (target <= 2 %)",
        counted, payload_bytes, overhead
    );

    let file = seal(Vec::with_capacity(counted as usize), hour, pool);
    let key = DataKey::from_bytes([7; 32]);
    let wav_len = 44 + payload_bytes as usize * 2;
    let (t_export, report) = best(3, || {
        let reader = Reader::new(&file[..], &key).unwrap();
        let mut out = Cursor::new(Vec::with_capacity(wav_len));
        export_wav(reader, &mut out, Channels::Stereo, |_| {}).unwrap()
    });
    // References: a plain hound write of the same stereo sample count, and a memcpy of a
    // buffer the WAV's size.
    let samples: Vec<i16> = audio(4096)
        .iter()
        .map(|b| i16::from(*b as i8) * 64)
        .collect();
    let (t_hound, _) = best(3, || {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = Cursor::new(Vec::with_capacity(wav_len));
        let mut wav = hound::WavWriter::new(&mut out, spec).unwrap();
        let total = payload_bytes as usize; // stereo samples = payload bytes (1 byte per sample)
        let mut done = 0;
        while done < total {
            let n = (total - done).min(samples.len());
            let mut w = wav.get_i16_writer(n as u32);
            for s in &samples[..n] {
                w.write_sample(*s);
            }
            w.flush().unwrap();
            done += n;
        }
        wav.finalize().unwrap();
    });
    let src = vec![1u8; wav_len];
    let (t_copy, copied) = best(3, || {
        let mut dst = Vec::with_capacity(wav_len);
        dst.extend_from_slice(black_box(&src));
        black_box(dst)
    });
    println!(
        "export:   {:8.1} ms CPU for {:.0} s of audio (target < 1000 ms); plain hound WAV write of the same samples {:6.1} ms (ratio {:.2}), memcpy of the WAV size {:5.1} ms",
        ms(t_export),
        report.seconds,
        ms(t_hound),
        t_export.as_secs_f64() / t_hound.as_secs_f64(),
        ms(t_copy)
    );
    assert_eq!(copied.len(), wav_len);
    println!(
        "verdict:  overhead {} · sealing {} · export {}",
        if overhead <= 2.0 { "MET" } else { "MISSED" },
        if per_call_second < 20.0 {
            "MET"
        } else {
            "MISSED"
        },
        if t_export < Duration::from_secs(1) {
            "MET"
        } else {
            "MISSED"
        }
    );
    file
}

fn main() {
    let pool = audio(1 << 16);
    let _ = figures(&pool);

    let mut c = Criterion::default().sample_size(10).configure_from_args();
    let minute = seal(Vec::new(), 60, &pool);
    let key = DataKey::from_bytes([7; 32]);
    let mut g = c.benchmark_group("one call-minute");
    g.throughput(Throughput::Bytes(
        60 * u64::from(FRAMES_PER_SECOND) * 2 * PAYLOAD as u64,
    ));
    g.bench_function("seal", |b| b.iter(|| seal(Count(0), 60, &pool).0));
    g.bench_function("export stereo", |b| {
        b.iter(|| {
            let reader = Reader::new(&minute[..], &key).unwrap();
            export_wav(reader, Cursor::new(Vec::new()), Channels::Stereo, |_| {}).unwrap()
        })
    });
    g.finish();
    c.final_summary();
}
