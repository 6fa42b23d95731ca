"""PAT (Pretrained Actigraphy Transformer) weights -> Clarity model bundle.

Rules:
- The encoder graph is built from the h5 tensors with onnx.helper; TensorFlow is never needed.
- Tensors are found through each layer group's `weight_names` attribute, as Keras-2 loads them,
  and every shape is checked against the size's architecture before anything is written.
- The bundle is written to a temporary folder and renamed into place, so a failed export never
  leaves a half bundle that the server could pick up.
"""

INPUT_LENGTH = 10080
EMBED_DIM = 96
FF_DIM = 256

# size -> (patch size, encoder layers, heads), from the paper and its notebooks.
SIZES = {
    "S": (18, 1, 6),
    "M": (18, 2, 12),
    "L": (9, 4, 12),
}


def arch(size):
    patch, layers, heads = SIZES[size]
    return {
        "size": size,
        "model": f"PAT-{size}",
        "patch_size": patch,
        "tokens": INPUT_LENGTH // patch,
        "layers": layers,
        "heads": heads,
        "embed_dim": EMBED_DIM,
        "ff_dim": FF_DIM,
        "input_length": INPUT_LENGTH,
    }
