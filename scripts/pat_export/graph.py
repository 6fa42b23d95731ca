"""The PAT encoder as an ONNX graph, and a numpy reference forward pass of the same maths.

Inputs `input` (batch, 10080) float32, already standardised. Outputs `tokens`
(batch, tokens, 96) and `embedding` (batch, 96) = mean over tokens. Batch is dynamic.
Keras semantics reproduced exactly: positional encoding with all sines then all cosines,
post-norm blocks, LayerNorm epsilon 1e-6, MultiHeadAttention with key_dim 96 per head
(scale 1/sqrt(96)).
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import arch

OPSET = 17  # LayerNormalization
IR_VERSION = 8  # readable by every ONNX Runtime since 1.12
LN_EPSILON = 1e-6


def positional_encoding(tokens, dim):
    pos = np.arange(tokens, dtype=np.float32)[:, None]
    div = np.exp(np.arange(0, dim, 2, dtype=np.float32) * (-np.log(10000.0) / dim))
    return np.concatenate([np.sin(pos * div), np.cos(pos * div)], axis=-1).astype(np.float32)


def _w(weights, group, name):
    return weights[(group, name)]


def build(weights, size):
    a = arch(size)
    t, p, d, h = a["tokens"], a["patch_size"], a["embed_dim"], a["heads"]
    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(op, ins, out, **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def linear(x, kernel, bias, name):
        y = node("MatMul", [x, const(f"{name}.kernel", kernel)], f"{name}.mm")
        return node("Add", [y, const(f"{name}.bias", bias)], name)

    def layer_norm(x, gamma, beta, name):
        return node(
            "LayerNormalization",
            [x, const(f"{name}.gamma", gamma), const(f"{name}.beta", beta)],
            name,
            axis=-1,
            epsilon=LN_EPSILON,
        )

    x = node("Reshape", ["input", const("patch_shape", np.array([-1, t, p], np.int64))], "patches")
    x = linear(x, _w(weights, "dense", "dense/kernel:0"), _w(weights, "dense", "dense/bias:0"), "dense")
    x = node("Add", [x, const("pos_encoding", positional_encoding(t, d))], "embedded")
    heads_shape = const("heads_shape", np.array([0, 0, h, d], np.int64))
    merged_shape = const("merged_shape", np.array([0, 0, h * d], np.int64))
    scale = const("attn_scale", np.array(1.0 / np.sqrt(d), np.float32))
    for i in range(1, a["layers"] + 1):
        g, pre = f"encoder_layer_{i}_transformer", f"encoder_layer_{i}"
        b = f"block{i}"
        proj = {}
        for part in ("query", "key", "value"):
            k = _w(weights, g, f"{pre}_attention/{part}/kernel:0").reshape(d, h * d)
            bias = _w(weights, g, f"{pre}_attention/{part}/bias:0").reshape(h * d)
            y = linear(x, k, bias, f"{b}.{part}")
            y = node("Reshape", [y, heads_shape], f"{b}.{part}.heads")
            # (batch, heads, tokens, d); keys transposed to (batch, heads, d, tokens).
            perm = [0, 2, 3, 1] if part == "key" else [0, 2, 1, 3]
            proj[part] = node("Transpose", [y], f"{b}.{part}.t", perm=perm)
        q = node("Mul", [proj["query"], scale], f"{b}.query.scaled")
        scores = node("MatMul", [q, proj["key"]], f"{b}.scores")
        probs = node("Softmax", [scores], f"{b}.probs", axis=-1)
        ctx = node("MatMul", [probs, proj["value"]], f"{b}.context")
        ctx = node("Transpose", [ctx], f"{b}.context.t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merged_shape], f"{b}.context.merged")
        out_k = _w(weights, g, f"{pre}_attention/attention_output/kernel:0").reshape(h * d, d)
        out_b = _w(weights, g, f"{pre}_attention/attention_output/bias:0")
        attn = linear(ctx, out_k, out_b, f"{b}.attention_output")
        x = node("Add", [x, attn], f"{b}.residual1")
        x = layer_norm(x, _w(weights, g, f"{pre}_norm1/gamma:0"), _w(weights, g, f"{pre}_norm1/beta:0"), f"{b}.norm1")
        ff = linear(x, _w(weights, g, f"{pre}_ff1/kernel:0"), _w(weights, g, f"{pre}_ff1/bias:0"), f"{b}.ff1")
        ff = node("Relu", [ff], f"{b}.ff1.relu")
        ff = linear(ff, _w(weights, g, f"{pre}_ff2/kernel:0"), _w(weights, g, f"{pre}_ff2/bias:0"), f"{b}.ff2")
        x = node("Add", [x, ff], f"{b}.residual2")
        x = layer_norm(x, _w(weights, g, f"{pre}_norm2/gamma:0"), _w(weights, g, f"{pre}_norm2/beta:0"), f"{b}.norm2")
    nodes.append(helper.make_node("Identity", [x], ["tokens"], name="tokens"))
    # Opset 17 ReduceMean takes its axes as an attribute.
    node("ReduceMean", ["tokens"], "embedding", axes=[1], keepdims=0)

    graph = helper.make_graph(
        nodes,
        f"PAT-{size} encoder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", a["input_length"]])],
        [
            helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", t, d]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", d]),
        ],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="clarity scripts/pat-export",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _ln(x, gamma, beta):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPSILON) * gamma + beta


def reference(weights, size, x):
    """Numpy forward pass in float64, written from the Keras layer definitions (not from the
    graph above): returns (tokens, embedding) for x of shape (batch, 10080)."""
    a = arch(size)
    t, p, d, h = a["tokens"], a["patch_size"], a["embed_dim"], a["heads"]
    W = {k: v.astype(np.float64) for k, v in weights.items()}
    x = np.asarray(x, np.float64).reshape(-1, t, p)
    x = x @ W[("dense", "dense/kernel:0")] + W[("dense", "dense/bias:0")]
    x = x + positional_encoding(t, d).astype(np.float64)
    for i in range(1, a["layers"] + 1):
        g, pre = f"encoder_layer_{i}_transformer", f"encoder_layer_{i}"

        def w(n):
            return W[(g, f"{pre}_{n}")]

        # Keras EinsumDense: "abc,cde->abde" for q/k/v, "abcd,cde->abe" for the output.
        q = np.einsum("btc,chk->bthk", x, w("attention/query/kernel:0"), optimize=True) + w("attention/query/bias:0")
        k = np.einsum("btc,chk->bthk", x, w("attention/key/kernel:0"), optimize=True) + w("attention/key/bias:0")
        v = np.einsum("btc,chk->bthk", x, w("attention/value/kernel:0"), optimize=True) + w("attention/value/bias:0")
        q = q / np.sqrt(d)
        s = np.einsum("bqhk,bshk->bhqs", q, k, optimize=True)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = np.einsum("bhqs,bshk->bqhk", s, v, optimize=True)
        attn = np.einsum("bqhk,hkc->bqc", ctx, w("attention/attention_output/kernel:0"), optimize=True)
        attn = attn + w("attention/attention_output/bias:0")
        x = _ln(x + attn, w("norm1/gamma:0"), w("norm1/beta:0"))
        ff = np.maximum(x @ w("ff1/kernel:0") + w("ff1/bias:0"), 0.0) @ w("ff2/kernel:0") + w("ff2/bias:0")
        x = _ln(x + ff, w("norm2/gamma:0"), w("norm2/beta:0"))
    return x, x.mean(axis=1)
