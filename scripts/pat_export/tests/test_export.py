"""The converter against TensorFlow's recorded output (../shared/pat) and, for sizes whose real
weights are absent, against the numpy reference on random weights in the same layout."""

import json
import os

import numpy as np
import onnxruntime as ort
import pytest

from pat_export import arch, bundle, graph, weights

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "pat")
needs_shared = pytest.mark.skipif(
    not os.path.isdir(SHARED), reason="../shared/pat not found (reference fixture is not part of the project)"
)


def _fixed():
    with open(os.path.join(SHARED, "fixed_input.json")) as f:
        x = np.asarray(json.load(f)["input_standardized"], np.float32)[None]
    with open(os.path.join(SHARED, "expected_random_PAT-S.json")) as f:
        return x, json.load(f)


def _run(out_dir, x):
    s = ort.InferenceSession(os.path.join(out_dir, "encoder.onnx"), providers=["CPUExecutionProvider"])
    return s.run(["tokens", "embedding"], {"input": x})


@needs_shared
def test_reference_forward_pass_agrees_with_tensorflow():
    x, want = _fixed()
    w = weights.load(os.path.join(SHARED, "random_PAT-S.h5"), "S")
    tokens, emb = graph.reference(w, "S", x)
    assert np.abs(emb[0] - want["embedding"]).max() < 1e-4
    assert np.abs(tokens[0, 0] - want["tokens_first_row"]).max() < 1e-4
    assert np.abs(tokens[0, -1] - want["tokens_last_row"]).max() < 1e-4


@needs_shared
def test_exported_bundle_agrees_with_tensorflow(tmp_path):
    x, want = _fixed()
    out = tmp_path / "bundle"
    doc = bundle.export(os.path.join(SHARED, "random_PAT-S.h5"), "S", str(out))
    tokens, emb = _run(str(out), np.repeat(x, 3, axis=0))  # dynamic batch
    for b in range(3):
        assert np.abs(emb[b] - want["embedding"]).max() < 1e-4
        assert np.abs(tokens[b, 0] - want["tokens_first_row"]).max() < 1e-4
        assert np.abs(tokens[b, -1] - want["tokens_last_row"]).max() < 1e-4
    assert doc["licence"] == "CC BY 4.0"
    assert set(doc["files"]) == {"encoder.onnx", "scaler.json"}
    for name, digest in doc["files"].items():
        assert bundle.sha256(str(out / name)) == digest
    assert json.loads((out / "scaler.json").read_text()) == {"mean": 0.0, "std": 1.0}


@pytest.mark.parametrize("size", ["S", "M", "L"])
def test_sizes_agree_with_the_reference(tmp_path, size):
    h5 = tmp_path / f"random_PAT-{size}.h5"
    weights.write_random(str(h5), size, seed=7)
    out = tmp_path / size
    doc = bundle.export(str(h5), size, str(out))
    a = arch(size)
    assert (doc["tokens"], doc["layers"], doc["heads"]) == (a["tokens"], a["layers"], a["heads"])
    x = np.random.default_rng(1).normal(size=(1, 10080)).astype(np.float32)
    tokens, emb = _run(str(out), x)
    want_tokens, want_emb = graph.reference(weights.load(str(h5), size), size, x)
    assert tokens.shape == (1, a["tokens"], 96)
    assert np.abs(emb - want_emb).max() < 1e-4
    assert np.abs(tokens - want_tokens).max() < 1e-3


def test_wrong_size_is_refused(tmp_path):
    h5 = tmp_path / "m.h5"
    weights.write_random(str(h5), "M")
    with pytest.raises(weights.WeightError, match="wrong --size"):
        bundle.export(str(h5), "S", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_head_and_scaler_are_bundled(tmp_path):
    h5, head, scaler = tmp_path / "s.h5", tmp_path / "head.onnx", tmp_path / "scaler.json"
    weights.write_random(str(h5), "S")
    bundle.random_head(str(head))
    scaler.write_text(json.dumps({"mean": [1.0] * 10080, "std": 2.0}))
    doc = bundle.export(str(h5), "S", str(tmp_path / "b"), scaler_path=str(scaler), head_path=str(head))
    assert doc["head"]["scores"] == ["example_score"]
    assert set(doc["files"]) == {"encoder.onnx", "head.onnx", "scaler.json"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mean": 0, "std": 0}))
    with pytest.raises(bundle.BundleError, match="std"):
        bundle.export(str(h5), "S", str(tmp_path / "c"), scaler_path=str(bad))
