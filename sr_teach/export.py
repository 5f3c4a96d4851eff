"""Fast inference beside the readable models: one network as plain layers, compiled, or in ONNX Runtime.

    network = fast_model(load_pretrained("espcn", scale=3))   # equal to the model's forward within 1e-5
    upscale(network, image)                                    # what upscale(model, image) returns, sooner
    export_onnx(model, "espcn_x3.onnx"); upscale(OnnxRuntimeModel("espcn_x3.onnx"), image)

`SubPixelNetwork` writes an ESPCN or FSRCNN as convolutions with their activations and one sub-pixel
convolution: FSRCNN's transposed convolution and a global residual's MATLAB bicubic both become
convolutions to scale^2 phases, added before one pixel shuffle, which `upscale`'s colour pass does itself
(`network_phases`, `colours_from_luma`). The readable forwards in
`sr_teach.models` stay the reference: the tests hold every variant here to them.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sr_teach.images import ycbcr_to_rgb
from sr_teach.interpolation import BICUBIC_REACH, bicubic_filters, symmetric_pad
from sr_teach.models import ESPCN, FSRCNN

BACKENDS = ("auto", "torch", "compile", "onnxruntime")  # fast_model's ways to run a SubPixelNetwork
ONNX_OPSET = 18  # the opset torch's exporter writes by default; onnxruntime 1.17 and later run it
ONNX_MISSING = "ONNX export needs the onnx, onnxscript and onnxruntime packages: pip install 'sr_teach[export]'"
# A SubPixelNetwork runs big images in bands of rows whose widest feature map stays under this size: glibc hands
# blocks over 32 MiB straight from the system (fresh pages to fault in, each time), and the CPU's cache is 32 MiB.
BAND_BYTES = 24 * 2**20


def as_phases(image: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, scale H, scale W) viewed, not copied, as (B, C, scale, scale, H, W): [..., i, j, y, x] is pixel
    (i, j) of block (y, x), the layout `F.pixel_shuffle` reads its channels in (channel c scale^2 + i scale + j)."""
    batch, channels, height, width = image.shape
    blocks = image.view(batch, channels, height // scale, scale, width // scale, scale)  # (B, C, H, i, W, j)
    return blocks.permute(0, 1, 3, 5, 2, 4)


# MATLAB's ycbcr2rgb as RGB = YCBCR_TO_RGB @ (Y, Cb, Cr) + RGB_OFFSET, read off `images.ycbcr_to_rgb` itself
RGB_OFFSET = ycbcr_to_rgb(torch.zeros(3, 1, 1, dtype=torch.float64))[:, 0, 0]  # the RGB of Y = Cb = Cr = 0
YCBCR_TO_RGB = ycbcr_to_rgb(torch.eye(3, dtype=torch.float64)[:, :, None])[:, :, 0] - RGB_OFFSET[:, None]


def colours_from_luma(luma: torch.Tensor, chroma: torch.Tensor, scale: int) -> torch.Tensor:
    """RGB in [0, 1], (B, 3, scale H, scale W), from an enlarged Y (B, 1, scale H, scale W), or its phases before
    the pixel shuffle (B, scale^2, H, W), and the small image's Cb, Cr (B, 2, H, W):
    `ycbcr_to_rgb(cat([luma, resize(chroma, scale)])).clamp(0, 1)` in one convolution.

    Colour conversion is linear and bicubic's weights sum to 1, so each RGB channel's share of the chroma
    can be enlarged instead of Cb and Cr: one convolution from (Cb, Cr) to 3 scale^2 phases (`bicubic_filters`
    times the matrix's Cb and Cr columns), then one pass that adds Y times its column and writes each phase
    where a pixel shuffle would put it. Within 1e-6 of the two-step way, except where bicubic takes Cb or Cr
    past [0, 1], which that way clamps (saturated colour checkerboards).
    """
    if luma.shape[-2:] == chroma.shape[-2:]:  # Y's phases before the pixel shuffle, (B, scale^2, H, W)
        luma_phases = luma.unflatten(1, (1, scale, scale))
    else:
        luma_phases = as_phases(luma.contiguous(), scale)
    phases = bicubic_filters(scale)[:, 0].to(chroma)  # (scale^2, 5, 5)
    matrix = YCBCR_TO_RGB.to(chroma)
    filters = matrix[:, None, 1:, None, None] * phases[None, :, None]  # (3, scale^2, 2, 5, 5): RGB, phase, Cb / Cr
    bias = RGB_OFFSET.to(chroma).repeat_interleave(scale**2)
    chroma_rgb = F.conv2d(symmetric_pad(chroma), filters.flatten(0, 1), bias)  # (B, 3 scale^2, H, W)
    rgb = luma.new_empty(luma.shape[0], 3, scale * chroma.shape[-2], scale * chroma.shape[-1])  # (B, 3, sH, sW)
    # Shuffle and add in one pass (a shuffle, then an add, would write the whole image twice)
    torch.add(chroma_rgb.unflatten(1, (3, scale, scale)), luma_phases,
              alpha=float(matrix[0, 0]), out=as_phases(rgb, scale))  # Y's column is 255 / 219 for R, G and B
    return rgb.clamp_(0, 1)


def sub_pixel_convolution(layer: nn.ConvTranspose2d) -> nn.Conv2d:
    """The convolution that, followed by `F.pixel_shuffle(stride)`, computes what transposed convolution `layer` does.

    Shi et al., "Is the deconvolution layer the same as a convolutional layer?" (arXiv:1609.07009, 2016).
    With stride s, output pixel s q + p (phase p) is the sum over input pixels q + o of their tap
    t = p + padding - s o: each phase uses every s-th tap, so the s^2 phases are s^2 ordinary kernels on
    the small grid, written here as one convolution with (out_channels s^2) filters, zeros where a phase has no tap.
    """
    stride, kernel, padding = layer.stride[0], layer.kernel_size[0], layer.padding[0]
    if (layer.stride[1], layer.kernel_size[1], layer.padding[1]) != (stride, kernel, padding) or layer.groups != 1 \
            or layer.dilation != (1, 1) or 2 * padding - layer.output_padding[0] != kernel - stride:
        raise ValueError("sub_pixel_convolution takes a square transposed convolution (groups=1, no dilation) "
                         "that makes exactly stride x stride output pixels per input pixel")
    taps = [(phase, tap, (phase + padding - tap) // stride) for phase in range(stride) for tap in range(kernel)
            if (phase + padding - tap) % stride == 0]  # (phase, tap of the kernel, input offset o)
    reach = max(abs(offset) for _, _, offset in taps)
    in_channels, out_channels = layer.in_channels, layer.out_channels
    convolution = nn.Conv2d(in_channels, out_channels * stride**2, kernel_size=2 * reach + 1, padding=reach,
                            bias=layer.bias is not None)
    weight = torch.zeros(out_channels, stride, stride, in_channels, 2 * reach + 1, 2 * reach + 1)
    transposed = layer.weight.detach()  # (in, out, k, k)
    for row_phase, row_tap, row_offset in taps:
        for column_phase, column_tap, column_offset in taps:
            weight[:, row_phase, column_phase, :, row_offset + reach, column_offset + reach] = (
                transposed[:, :, row_tap, column_tap].T)
    with torch.no_grad():
        convolution.weight.copy_(weight.reshape(convolution.weight.shape))
        if layer.bias is not None:
            convolution.bias.copy_(layer.bias.detach().repeat_interleave(stride**2))
    return convolution.to(layer.weight)


class ColumnPairConvolution(nn.Module):
    """`convolution` (k x k, stride 1, zero padding k // 2) run on pairs of columns folded into its channels: the
    same numbers, with twice the output channels at half the positions.

    oneDNN makes output channels in blocks of 8 on this CPU, so a convolution to 4 channels (FSRCNN's sub-pixel
    layer at x2) pays for 8. In channels-last memory, columns 2x and 2x + 1 folded into one position is a view,
    and the folded convolution makes 8 real channels: output column 2x + own reads input column
    2 (x + step) + other, that is offset 2 step + other - own, which the folded kernel's taps hold. About
    1.5x faster here; odd widths and other memory layouts run the plain convolution.
    """

    def __init__(self, convolution: nn.Conv2d) -> None:
        super().__init__()
        out_channels, in_channels, size, _ = convolution.weight.shape
        radius, reach = size // 2, (size // 2 + 1) // 2  # reach: folded columns on each side
        weight = torch.zeros(2, out_channels, 2, in_channels, size, 2 * reach + 1)  # (own, out, other, in, y, step)
        for own in range(2):
            for other in range(2):
                for step in range(-reach, reach + 1):
                    offset = 2 * step + other - own  # the input column, relative to the output's
                    if -radius <= offset <= radius:
                        weight[own, :, other, :, :, step + reach] = convolution.weight.detach()[..., offset + radius]
        self.plain = convolution
        self.folded = nn.Conv2d(2 * in_channels, 2 * out_channels, (size, 2 * reach + 1), padding=(radius, reach),
                                bias=convolution.bias is not None).to(convolution.weight)
        with torch.no_grad():
            self.folded.weight.copy_(weight.reshape(self.folded.weight.shape))
            if convolution.bias is not None:
                self.folded.bias.copy_(convolution.bias.detach().repeat(2))
        self.folded.to(memory_format=torch.channels_last)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        if width % 2 or not features.is_contiguous(memory_format=torch.channels_last):
            return self.plain(features)
        pairs = features.permute(0, 2, 3, 1).reshape(batch, height, width // 2, 2 * channels)  # a view: (B, H, W/2, 2C)
        output = self.folded(pairs.permute(0, 3, 1, 2))  # (B, 2 out, H, W / 2), channels-last
        return output.permute(0, 2, 3, 1).reshape(batch, height, width, -1).permute(0, 3, 1, 2)  # (B, out, H, W)


class SubPixelNetwork(nn.Module):
    """An ESPCN or FSRCNN for inference, as plain layers: the same numbers as its forward up to float rounding.

    body: its convolutions and activations on the small image (FSRCNN: all but the last layer);
    sub_pixel: one convolution to C scale^2 channels (FSRCNN's transposed convolution rewritten by
    `sub_pixel_convolution`); a global residual's bicubic enlargement as `bicubic_filters` on the
    same phases, so that one pixel shuffle makes the image.
    band_bytes: run an image in bands of rows (each with its receptive field's rows of context, so the
    result is the same) whose widest feature map stays under this many bytes; None: whole.
    """

    upsampling = "post"

    def __init__(self, model: ESPCN | FSRCNN) -> None:
        super().__init__()
        if isinstance(model, ESPCN):
            self.body = copy.deepcopy(model.feature_extraction)
            self.sub_pixel = copy.deepcopy(model.sub_pixel_convolution)
        elif isinstance(model, FSRCNN):
            self.body = copy.deepcopy(nn.Sequential(*model.feature_extraction, *model.shrinking, *model.mapping,
                                                    *model.expanding))
            self.sub_pixel = sub_pixel_convolution(model.deconvolution)
        else:
            raise ValueError(f"SubPixelNetwork rewrites an ESPCN or an FSRCNN, not a {type(model).__name__}")
        for layer in self.body:  # activations in place: one feature map less to allocate per layer
            if isinstance(layer, nn.ReLU):
                layer.inplace = True
        self.scale, self.num_channels = model.scale, model.num_channels
        self.in_channels, self.scales = model.in_channels, model.scales
        from sr_teach.inference import receptive_field_radius  # inference imports this module

        # The context a tile needs, found once from the reference (a compiled copy could not be probed).
        self.receptive_field_radius = max(receptive_field_radius(model), BICUBIC_REACH)
        residual = model.config.global_residual  # its bicubic, on the phases the shuffle puts in place
        filters = bicubic_filters(model.scale, model.num_channels).to(self.sub_pixel.weight) if residual else None
        self.register_buffer("bicubic", filters)
        self.widest = max(layer.out_channels for layer in self.modules() if isinstance(layer, nn.Conv2d))
        self.band_bytes: int | None = BAND_BYTES
        self.eval().requires_grad_(False)

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.phases(lr_image), self.scale)  # (B, C, scale H, scale W): ONNX's DepthToSpace

    def phases(self, lr_image: torch.Tensor) -> torch.Tensor:
        """The output before its pixel shuffle, (B, C scale^2, H, W): the colour pass (`colours_from_luma`) puts
        the phases in place as it adds Cb and Cr."""
        batch, _, height, width = lr_image.shape
        row_bytes = batch * width * self.widest * lr_image.element_size()  # one row of the widest feature map
        rows = height if self.band_bytes is None else max(1, self.band_bytes // row_bytes)
        if rows >= height:
            return self.whole_phases(lr_image)
        context, bands = self.receptive_field_radius, []
        for start in range(0, height, rows):
            stop = min(start + rows, height)
            low, high = max(0, start - context), min(height, stop + context)
            band = self.whole_phases(lr_image[..., low:high, :])  # (B, C scale^2, high - low, W)
            bands.append(band[..., start - low:stop - low, :])  # its own rows, without context
        return torch.cat(bands, dim=-2)  # (B, C scale^2, H, W)

    def whole_phases(self, lr_image: torch.Tensor) -> torch.Tensor:
        """The network on the whole of `lr_image` (B, C, H, W) -> its phases (B, C scale^2, H, W)."""
        features = lr_image
        for layer in self.body:  # Tanh has no in-place option; its in-place function saves one pass
            features = torch.tanh_(features) if isinstance(layer, nn.Tanh) else layer(features)  # (B, F, H, W)
        sub_pixels = self.sub_pixel(features)  # (B, C scale^2, H, W)
        if self.bicubic is not None:  # + MATLAB bicubic of the input, phase by phase
            sub_pixels = sub_pixels + F.conv2d(symmetric_pad(lr_image), self.bicubic, groups=self.num_channels)
        return sub_pixels


def fast_model(model: nn.Module, backend: str = "auto") -> nn.Module:
    """An inference-only equivalent of an ESPCN or FSRCNN that `upscale` takes as it takes the model.

    backend: "torch" (`SubPixelNetwork` in channels-last memory, which oneDNN's convolutions prefer, in bands of
    rows, a sub-pixel layer to fewer than 8 channels as a `ColumnPairConvolution`), "compile" (the network through
    `torch.compile` with frozen weights: activations fused into the convolutions; needs a C++ compiler, and
    compiles again for each new image size), "onnxruntime"
    (its ONNX export run by ONNX Runtime, `pip install 'sr_teach[export]'`: it reuses its memory from
    run to run, where PyTorch asks the system for each big feature map anew) or "auto", what measured
    fastest here (benchmarks/inference_speed.py): onnxruntime for ESPCN where it is installed; torch for
    FSRCNN, whose PReLUs ONNX Runtime runs outside its fast convolutions' memory layout, and otherwise.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        try:
            require_onnx()
            backend = "torch" if isinstance(model, FSRCNN) else "onnxruntime"
        except ImportError:
            backend = "torch"
    network = SubPixelNetwork(model)
    if backend == "onnxruntime":
        return OnnxRuntimeModel(onnx_bytes(network))
    network = network.to(memory_format=torch.channels_last)
    if backend == "compile":
        return torch.compile(network, options={"freezing": True})  # freezing: weights become constants
    if network.sub_pixel.out_channels < 8:  # oneDNN makes output channels 8 at a time (compiled, it was slower)
        network.sub_pixel = ColumnPairConvolution(network.sub_pixel)
    return network


def network_phases(model: nn.Module, luma: torch.Tensor) -> torch.Tensor | None:
    """A `fast_model` network's Y before its pixel shuffle (B, scale^2, H, W), clamped to [0, 1] as `enlarge`
    clamps Y, for `colours_from_luma` to put in place; None for other models."""
    if isinstance(model, SubPixelNetwork):
        weight = next(model.parameters())
        phases = model.phases(luma.to(weight)).to(luma)
    elif isinstance(model, OnnxRuntimeModel):
        phases = model.phases(luma)  # None if its file does not end in a pixel shuffle
    else:
        return None
    return None if phases is None else phases.clamp_(0, 1)


def onnx_bytes(model: nn.Module, sub_pixel: bool = True) -> bytes:
    """The ONNX file of `model` (an ESPCN or FSRCNN as its `SubPixelNetwork` unless sub_pixel=False), for any
    batch and image size.

    torch.onnx's exporter (torch.export, then onnxscript) traces the forward once; the image's batch,
    height and width stay free (at least 2 pixels), and the model's scale, family and channels are
    written into the file's metadata, where `OnnxRuntimeModel` reads them back.
    """
    require_onnx()
    # A copy in plain (NCHW) memory: the exporter traces channels-last weights into a graph for small batches only.
    model = SubPixelNetwork(model) if sub_pixel and isinstance(model, (ESPCN, FSRCNN)) else copy.deepcopy(model)
    model = model.to(memory_format=torch.contiguous_format).eval()
    if isinstance(model, SubPixelNetwork):
        model.band_bytes = None  # one graph for any size (ONNX Runtime reuses its memory from run to run anyway)
    channels = getattr(model, "in_channels", None) or getattr(model, "num_channels", 1)
    example = torch.rand(1, channels, 16, 16, dtype=next(model.parameters()).dtype)
    free = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=2), 3: torch.export.Dim("width", min=2)}
    torch_log = logging.getLogger("torch")
    level, torch_log.level = torch_log.level, logging.CRITICAL  # the exporter logs pages; its error is raised below
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecations inside torch.export: nothing the user can act on
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=["image"], output_names=["output"],
                                        dynamic_shapes=(free,), opset_version=ONNX_OPSET, verbose=False)
    except Exception as error:  # torch.export's errors are many kinds, and pages long
        raise ValueError(f"{type(model).__name__} could not be exported to ONNX for images of any size: "
                         f"{str(error).strip().splitlines()[0]}") from error
    finally:
        torch_log.level = level
    proto = program.model_proto
    dimensions = proto.graph.input[0].type.tensor_type.shape.dim  # a traced size (MATLAB's resize) stays fixed
    if any(dimensions[axis].dim_value for axis in (0, 2, 3)):
        raise ValueError(f"{type(model).__name__} could not be exported to ONNX for images of any size: the exporter "
                         f"fixed the input at {[dimension.dim_value or dimension.dim_param for dimension in dimensions]}")
    for key in ("upsampling", "scale", "num_channels", "in_channels", "receptive_field_radius"):
        value = getattr(model, key, None)
        if key == "receptive_field_radius" and not isinstance(value, int):
            from sr_teach.inference import receptive_field_radius

            value = receptive_field_radius(model)
        if value is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
    return proto.SerializeToString()


def export_onnx(model: nn.Module, path: str | os.PathLike, overwrite: bool = False) -> float:
    """Write `model` as an ONNX file (see `onnx_bytes`) and return the largest difference between ONNX Runtime's
    output and the model's own forward on a random image (a ValueError above 1e-4; nothing is written then)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --force (overwrite=True) to replace it")
    contents = onnx_bytes(model)
    difference = onnx_difference(model, OnnxRuntimeModel(contents))
    if difference > 1e-4:
        raise ValueError(f"ONNX Runtime's output differs from the model's by {difference:.2g} (more than 1e-4)")
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(contents)
    partial.replace(path)  # all or nothing: an interrupted export leaves no half-written file under the name
    return difference


def onnx_difference(model: nn.Module, runtime: nn.Module, size: tuple[int, int] = (23, 37)) -> float:
    """The largest difference between `model`'s forward and `runtime`'s on one random (2, C, *size) batch."""
    torch.manual_seed(0)
    channels = getattr(model, "in_channels", None) or model.num_channels
    image = torch.rand(2, channels, *size)
    was_training = model.training
    with torch.no_grad():
        expected = model.eval()(image)
        model.train(was_training)
        return (runtime(image) - expected).abs().max().item()


class OnnxRuntimeModel(nn.Module):
    """An ONNX file (a path or its bytes) run by ONNX Runtime on the CPU, as a module `upscale` takes: its scale,
    family, channels and receptive field come from the file's metadata (`onnx_bytes` writes them).

    threads: ONNX Runtime's threads for one image (default: torch.get_num_threads(), as PyTorch would use).
    """

    def __init__(self, model_file: str | os.PathLike | bytes, threads: int | None = None) -> None:
        super().__init__()
        self.options = require_onnx().SessionOptions()
        self.options.intra_op_num_threads = threads or torch.get_num_threads()
        self.options.inter_op_num_threads = 1  # one chain of layers: nothing to run side by side
        # Its threads would spin for work after each run, in the way of PyTorch's colour steps that follow.
        self.options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.options.log_severity_level = 4  # its errors come back as exceptions; no log lines besides
        contents = model_file if isinstance(model_file, bytes) else Path(model_file).read_bytes()
        self.session = self.start(contents)
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.upsampling = metadata.get("upsampling", "post")
        self.num_channels = int(metadata.get("num_channels", 1))
        self.in_channels = int(metadata.get("in_channels", self.num_channels))
        self.scale = int(metadata["scale"]) if "scale" in metadata else None
        self.scales = None if self.upsampling == "pre" or self.scale is None else (self.scale,)
        self.receptive_field_radius = int(metadata.get("receptive_field_radius", 0))
        self.input_name = self.session.get_inputs()[0].name  # the same in both graphs
        self.phase_graph = graph_before_final_shuffle(contents)  # None: the file does not end in a pixel shuffle
        self.phase_session = None  # started on the first call of `phases`

    def start(self, contents: bytes):
        return require_onnx().InferenceSession(contents, self.options, providers=["CPUExecutionProvider"])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.run(self.session, image)  # (B, C, scale H, scale W)

    def phases(self, image: torch.Tensor) -> torch.Tensor | None:
        """The output before the file's final pixel shuffle, (B, C scale^2, H, W), or None if it has none. The
        colour pass (`colours_from_luma`) puts the phases in place anyway; ONNX Runtime's DepthToSpace took 4 of
        ESPCN x3's 71 ms at 1080p here."""
        if self.phase_graph is None:
            return None
        if self.phase_session is None:
            self.phase_session = self.start(self.phase_graph)
        return self.run(self.phase_session, image)

    def run(self, session, image: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32)  # ONNX Runtime wants NCHW
        try:
            (output,) = session.run(None, {self.input_name: array})
        except Exception as error:  # ONNX Runtime's own error classes, with its node names in the message
            height, width = array.shape[-2:]
            raise ValueError(f"ONNX Runtime could not run the model on a {height} x {width} image (is it too small? "
                             f"the exported graphs take at least 2 x 2): {str(error).strip()[:200]}") from error
        return torch.from_numpy(output).to(device=image.device, dtype=image.dtype)


def graph_before_final_shuffle(contents: bytes) -> bytes | None:
    """The ONNX file `contents` without the DepthToSpace that makes its output, if it is PyTorch's pixel shuffle
    (mode CRD): the graph's output becomes that node's input, the phases. None if the file ends otherwise."""
    import onnx

    proto = onnx.load_model_from_string(contents)
    graph, output = proto.graph, proto.graph.output[0]
    last = next((node for node in graph.node if output.name in node.output), None)
    if last is None or last.op_type != "DepthToSpace" or len(graph.output) != 1:
        return None
    mode = next((attribute.s for attribute in last.attribute if attribute.name == "mode"), b"DCR")
    if mode != b"CRD":  # DCR orders the channels otherwise
        return None
    graph.node.remove(last)
    output.name = last.input[0]
    output.type.tensor_type.ClearField("shape")  # (B, C scale^2, H, W) now; ONNX Runtime finds it
    return proto.SerializeToString()


def require_onnx():
    """The onnxruntime module, or an ImportError that says what to install (the exporter needs onnx and onnxscript)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # onnxscript still touches torch.jit on import
            import onnx  # noqa: F401  (torch.onnx's exporter imports these two itself)
            import onnxruntime
            import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(f"{ONNX_MISSING} (missing: {error.name})") from None
    return onnxruntime
