"""Writing a Clarity model bundle: encoder.onnx, optional head.onnx, scaler.json, bundle.json."""

import hashlib
import json
import os
import shutil
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import EMBED_DIM, INPUT_LENGTH, arch, graph, weights

FORMAT = "clarity-pat-bundle/1"
LICENCE = "CC BY 4.0"
SOURCE = (
    "Pretrained Actigraphy Transformer (Ruan, Zhang, Oh, Jin, Jacobson; arXiv 2411.15240), "
    "weights from github.com/njacobsonlab/Pretrained-Actigraphy-Transformer"
)


class BundleError(Exception):
    pass


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_scaler(path):
    """{"mean": number or [10080], "std": number or [10080]}; std must be > 0."""
    if path is None:
        return {"mean": 0.0, "std": 1.0}
    try:
        with open(path) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        raise BundleError(f"{path}: cannot read the scaler ({e})") from e
    if not isinstance(s, dict) or set(s) < {"mean", "std"}:
        raise BundleError(f'{path}: expected {{"mean": ..., "std": ...}}')
    out = {}
    for key in ("mean", "std"):
        v = s[key]
        arr = np.asarray(v, dtype=np.float64)
        if arr.ndim not in (0, 1) or (arr.ndim == 1 and arr.shape[0] != INPUT_LENGTH):
            raise BundleError(f"{path}: `{key}` must be a number or {INPUT_LENGTH} numbers")
        if not np.all(np.isfinite(arr)) or (key == "std" and np.any(arr <= 0)):
            raise BundleError(f"{path}: `{key}` must be finite" + (" and > 0" if key == "std" else ""))
        out[key] = float(arr) if arr.ndim == 0 else [float(x) for x in arr]
    return out


def check_head(path):
    """A head maps `embedding` (batch, 96) to one or more named float outputs of shape (batch,)
    or (batch, 1); returns the score names."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise BundleError(f"{path}: not a loadable ONNX model ({e})") from e
    ins = sess.get_inputs()
    if len(ins) != 1 or ins[0].name != "embedding":
        raise BundleError(f"{path}: a head has exactly one input, named `embedding`")
    names = [o.name for o in sess.get_outputs()]
    out = sess.run(None, {"embedding": np.zeros((2, EMBED_DIM), np.float32)})
    for name, v in zip(names, out):
        if v.dtype != np.float32 or v.shape not in ((2,), (2, 1)):
            raise BundleError(f"{path}: output `{name}` must be float32 (batch,) or (batch, 1)")
    return names


def random_head(path, seed=0, names=("example_score",)):
    """A head shaped like the paper's (Dense(128, relu) -> Dense(1, sigmoid) per score) with
    random weights: for tests only, it predicts nothing."""
    rng = np.random.default_rng(seed)
    nodes, inits, outs = [], [], []
    for n in names:
        w1 = rng.normal(0, 0.1, (EMBED_DIM, 128)).astype(np.float32)
        w2 = rng.normal(0, 0.1, (128, 1)).astype(np.float32)
        inits += [numpy_helper.from_array(w1, f"{n}.w1"), numpy_helper.from_array(w2, f"{n}.w2")]
        nodes += [
            helper.make_node("MatMul", ["embedding", f"{n}.w1"], [f"{n}.h"]),
            helper.make_node("Relu", [f"{n}.h"], [f"{n}.r"]),
            helper.make_node("MatMul", [f"{n}.r", f"{n}.w2"], [f"{n}.z"]),
            helper.make_node("Sigmoid", [f"{n}.z"], [n]),
        ]
        outs.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 1]))
    g = helper.make_graph(
        nodes,
        "random head",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBED_DIM])],
        outs,
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.OPSET)], ir_version=graph.IR_VERSION)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def export(weights_path, size, out_dir, scaler_path=None, head_path=None):
    """Converts and writes the bundle; returns the bundle.json document."""
    if size not in ("S", "M", "L"):
        raise BundleError(f"--size must be S, M or L, not {size!r}")
    a = arch(size)
    w = weights.load(weights_path, size)
    scaler = load_scaler(scaler_path)
    scores = check_head(head_path) if head_path else []
    model = graph.build(w, size)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".pat-export-", dir=parent)
    try:
        onnx.save(model, os.path.join(tmp, "encoder.onnx"))
        with open(os.path.join(tmp, "scaler.json"), "w") as f:
            json.dump(scaler, f)
        if head_path:
            shutil.copyfile(head_path, os.path.join(tmp, "head.onnx"))
        files = {n: sha256(os.path.join(tmp, n)) for n in sorted(os.listdir(tmp))}
        doc = {
            "format": FORMAT,
            "model": a["model"],
            "size": size,
            "input_length": a["input_length"],
            "patch_size": a["patch_size"],
            "tokens": a["tokens"],
            "embed_dim": a["embed_dim"],
            "layers": a["layers"],
            "heads": a["heads"],
            "encoder": {"file": "encoder.onnx", "input": "input", "outputs": ["tokens", "embedding"]},
            "head": {"file": "head.onnx", "input": "embedding", "scores": scores} if head_path else None,
            "scaler": {"file": "scaler.json", "identity": scaler_path is None},
            "files": files,
            "provenance": {
                "source": SOURCE,
                "weights_file": os.path.basename(weights_path),
                "weights_sha256": sha256(weights_path),
                "head_file": os.path.basename(head_path) if head_path else None,
                "scaler_file": os.path.basename(scaler_path) if scaler_path else None,
                "converter": "clarity scripts/pat-export",
                "opset": graph.OPSET,
            },
            "licence": LICENCE,
            "attribution": "PAT weights by Ruan et al., CC BY 4.0; converted to ONNX without changes to the maths",
        }
        with open(os.path.join(tmp, "bundle.json"), "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        if os.path.exists(out_dir):
            if not os.path.isdir(out_dir) or (
                os.listdir(out_dir) and not os.path.exists(os.path.join(out_dir, "bundle.json"))
            ):
                raise BundleError(f"{out_dir}: exists and is not a bundle; refusing to replace it")
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
        return doc
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
