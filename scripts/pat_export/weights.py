"""Reading (and, for tests, writing) PAT encoder weights in the official Keras-2 h5 layout."""

import h5py
import numpy as np

from . import EMBED_DIM, FF_DIM, arch


class WeightError(Exception):
    pass


def _block_names(i):
    p = f"encoder_layer_{i}"
    names = []
    for part in ("query", "key", "value", "attention_output"):
        names += [f"{p}_attention/{part}/kernel:0", f"{p}_attention/{part}/bias:0"]
    names += [f"{p}_norm1/gamma:0", f"{p}_norm1/beta:0"]
    names += [f"{p}_ff1/kernel:0", f"{p}_ff1/bias:0", f"{p}_ff2/kernel:0", f"{p}_ff2/bias:0"]
    names += [f"{p}_norm2/gamma:0", f"{p}_norm2/beta:0"]
    return names


def expected_shapes(size):
    """{(layer group, weight name): shape} for every tensor of a PAT encoder."""
    a = arch(size)
    d, h, f, p = EMBED_DIM, a["heads"], FF_DIM, a["patch_size"]
    shapes = {("dense", "dense/kernel:0"): (p, d), ("dense", "dense/bias:0"): (d,)}
    for i in range(1, a["layers"] + 1):
        group = f"encoder_layer_{i}_transformer"
        pre = f"encoder_layer_{i}"
        for part in ("query", "key", "value"):
            shapes[(group, f"{pre}_attention/{part}/kernel:0")] = (d, h, d)
            shapes[(group, f"{pre}_attention/{part}/bias:0")] = (h, d)
        shapes[(group, f"{pre}_attention/attention_output/kernel:0")] = (h, d, d)
        shapes[(group, f"{pre}_attention/attention_output/bias:0")] = (d,)
        for n in ("norm1", "norm2"):
            shapes[(group, f"{pre}_{n}/gamma:0")] = (d,)
            shapes[(group, f"{pre}_{n}/beta:0")] = (d,)
        shapes[(group, f"{pre}_ff1/kernel:0")] = (d, f)
        shapes[(group, f"{pre}_ff1/bias:0")] = (f,)
        shapes[(group, f"{pre}_ff2/kernel:0")] = (f, d)
        shapes[(group, f"{pre}_ff2/bias:0")] = (d,)
    return shapes


def _text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def load(path, size):
    """{(group, name): float32 array}, checked against the architecture of `size`."""
    want = expected_shapes(size)
    out = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightError(f"{path}: not a readable h5 file ({e})") from e
    with f:
        groups = {g for g, _ in want}
        extra = [
            _text(n)
            for n in f.attrs.get("layer_names", [])
            if _text(n).startswith("encoder_layer_") and _text(n) not in groups
        ]
        if extra:
            raise WeightError(
                f"{path}: has encoder layers {extra} that PAT-{size} does not (wrong --size?)"
            )
        for group in sorted(groups):
            if group not in f:
                raise WeightError(f"{path}: no layer group `{group}` (wrong --size?)")
            names = [_text(n) for n in f[group].attrs.get("weight_names", [])]
            for name in names:
                if (group, name) not in want:
                    raise WeightError(f"{path}: unexpected tensor {group}/{name}")
                ds = f[group].get(name)
                if ds is None:
                    raise WeightError(f"{path}: {group} lists {name} but it is absent")
                arr = np.asarray(ds, dtype=np.float32)
                if arr.shape != want[(group, name)]:
                    raise WeightError(
                        f"{path}: {group}/{name} has shape {arr.shape}, PAT-{size} needs "
                        f"{want[(group, name)]} (wrong --size?)"
                    )
                if not np.all(np.isfinite(arr)):
                    raise WeightError(f"{path}: {group}/{name} has non-finite values")
                out[(group, name)] = arr
    missing = sorted(f"{g}/{n}" for g, n in want if (g, n) not in out)
    if missing:
        raise WeightError(f"{path}: missing tensors {missing}")
    return out


def write_random(path, size, seed=0, scale=0.1):
    """Writes random weights for `size` in the official layout (every tensor random, LayerNorm
    parameters and biases too), for tests and benchmarks of sizes whose real weights are absent."""
    a = arch(size)
    rng = np.random.default_rng(seed)
    layer_names = ["inputs", "reshape", "dense", "tf.__operators__.add"] + [
        f"encoder_layer_{i}_transformer" for i in range(1, a["layers"] + 1)
    ]
    shapes = expected_shapes(size)
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names], dtype=object)
        for layer in layer_names + ["top_level_model_weights"]:
            names = [n for g, n in shapes if g == layer]
            if layer.startswith("encoder_layer_"):
                names = _block_names(int(layer.split("_")[2]))
            g = f.create_group(layer)
            g.attrs["weight_names"] = (
                np.array([n.encode() for n in names], dtype=object) if names else np.array([])
            )
            for n in names:
                shape = shapes[(layer, n)]
                v = rng.normal(0.0, scale, size=shape).astype(np.float32)
                if n.endswith("gamma:0"):
                    v += 1.0
                g.create_dataset(n, data=v)
