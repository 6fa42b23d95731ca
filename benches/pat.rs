//! PAT inference throughput: weeks/s for PAT-S and PAT-M at batch 1 and batch 16, one
//! session call per batch with ONNX Runtime's default threads (one per core).
//!
//! Needs ONNX Runtime (`CLARITY_TEST_ONNXRUNTIME_LIB` or `ORT_DYLIB_PATH`; `scripts/pat-env lib`
//! prints it) and the converter's environment; PAT-S is `../shared/pat/random_PAT-S.h5`
//! converted, PAT-M random weights in the official layout (same cost as real ones). Skips
//! with a message when either is missing. Run: `cargo bench --bench pat`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use clarity::scoring::{Bundle, INPUT_LENGTH, Model, runtime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn export(args: &[&std::ffi::OsStr]) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pat-export");
    match Command::new(script).args(args).status() {
        Ok(s) if s.success() => true,
        other => {
            eprintln!("skipping: scripts/pat-export failed ({other:?})");
            false
        }
    }
}

/// Converts (once per bench run) the bundle for `size`.
fn bundle(size: &str, tmp: &Path) -> Option<PathBuf> {
    let out = tmp.join(format!("PAT-{size}"));
    let h5 = if size == "S" {
        let h5 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pat/random_PAT-S.h5");
        if !h5.is_file() {
            eprintln!("skipping PAT-S: ../shared/pat not found");
            return None;
        }
        h5
    } else {
        let h5 = tmp.join(format!("random_PAT-{size}.h5"));
        let random = [
            "--random-weights".as_ref(),
            h5.as_os_str(),
            "--size".as_ref(),
            size.as_ref(),
        ];
        if !export(&random) {
            return None;
        }
        h5
    };
    let args = [
        "--weights".as_ref(),
        h5.as_os_str(),
        "--size".as_ref(),
        size.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    export(&args).then_some(out)
}

fn pat(c: &mut Criterion) {
    let lib = std::env::var_os("CLARITY_TEST_ONNXRUNTIME_LIB")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| runtime::library_path(None));
    let Some(lib) = lib else {
        eprintln!(
            "skipping: no ONNX Runtime (set CLARITY_TEST_ONNXRUNTIME_LIB=$(scripts/pat-env lib))"
        );
        return;
    };
    let env = match runtime::environment(&lib) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("pat");
    group.sample_size(10);
    for size in ["S", "M"] {
        let Some(dir) = bundle(size, tmp.path()) else {
            continue;
        };
        let bundle = Bundle::open(&dir).expect("bundle verifies");
        let mut model = Model::open(env, &bundle, 0).expect("model opens");
        for batch in [1usize, 16] {
            // Standardised activity-like values; the cost does not depend on them.
            let input: Vec<f32> = (0..batch * INPUT_LENGTH)
                .map(|i| ((i % 1440) as f32 / 720.0 - 1.0) * 0.8)
                .collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("PAT-{size}/batch{batch}"), |b| {
                b.iter(|| black_box(model.run(black_box(&input), false).expect("runs")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pat);
criterion_main!(benches);
