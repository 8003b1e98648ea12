import numpy as np
import pytest

from device.inference.preprocess import LETTERBOX_FILL, Transform, fit, normalize, preprocess
from device.models.bundle import InputSpec, Normalization
from tests.conftest import dets


def _spec(**kw: object) -> InputSpec:
    return InputSpec.model_validate({"width": 4, "height": 2, **kw})


def test_stretch_maps_boxes_back_to_the_frame() -> None:
    image = np.zeros((20, 40, 3), np.uint8)
    fitted, transform = fit(image, _spec(resize="stretch"))
    assert fitted.shape == (2, 4, 3)
    back = transform.to_frame(dets([[1, 0.5, 2, 1.5]]))
    assert back.xyxy.tolist() == [[10, 5, 20, 15]]


def test_letterbox_keeps_aspect_and_pads_centered() -> None:
    image = np.full((10, 10, 3), 200, np.uint8)
    fitted, transform = fit(image, _spec(resize="letterbox"))
    assert fitted.shape == (2, 4, 3)
    assert fitted[:, 1:3].min() == 200 and fitted[:, 0].max() == LETTERBOX_FILL and fitted[:, 3].max() == LETTERBOX_FILL
    assert (transform.scale_x, transform.pad_x, transform.pad_y) == (0.2, 1.0, 0.0)
    back = transform.to_frame(dets([[1, 0, 3, 2]]))
    assert back.xyxy.tolist() == [[0, 0, 10, 10]]


@pytest.mark.parametrize(
    ("layout", "color", "shape", "first"),
    [("NHWC", "RGB", (1, 1, 2, 3), [3.0, 2.0, 1.0]), ("NHWC", "BGR", (1, 1, 2, 3), [1.0, 2.0, 3.0]),
     ("NCHW", "RGB", (1, 3, 1, 2), [3.0, 2.0, 1.0])],
)
def test_normalize_colour_order_scale_and_layout(layout: str, color: str, shape: tuple[int, ...], first: list[float]) -> None:
    image = np.array([[[1, 2, 3], [1, 2, 3]]], np.uint8)  # BGR
    spec = InputSpec.model_validate({"width": 2, "height": 1, "layout": layout, "color": color})
    tensor = normalize(image, spec, Normalization(scale=1.0, mean=(0, 0, 0), std=(1, 1, 1)))
    assert tensor.shape == shape and tensor.dtype == np.float32
    pixel = tensor[0, :, 0, 0] if layout == "NCHW" else tensor[0, 0, 0]
    assert pixel.tolist() == first


def test_mean_std_normalisation() -> None:
    image = np.full((1, 1, 3), 255, np.uint8)
    spec = InputSpec.model_validate({"width": 1, "height": 1, "color": "BGR"})
    tensor = normalize(image, spec, Normalization(scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)))
    assert tensor.reshape(-1).tolist() == pytest.approx([2.0, 1.0, 0.5])


def test_boxes_are_clipped_to_the_frame() -> None:
    transform = Transform(1.0, 1.0, 0.0, 0.0, 10, 10)
    assert transform.to_frame(dets([[-5, 2, 15, 8]])).xyxy.tolist() == [[0, 2, 10, 8]]


def test_preprocess_returns_tensor_and_transform() -> None:
    tensor, transform = preprocess(np.zeros((8, 16, 3), np.uint8), _spec(), Normalization())
    assert tensor.shape == (1, 2, 4, 3) and transform.frame_width == 16


def _numpy_normalize(image: np.ndarray, spec: InputSpec, norm: Normalization) -> np.ndarray:
    """The normalisation the device ran before issue 27 (reversed view, astype, broadcast): the reference."""
    if spec.color == "RGB":
        image = image[:, :, ::-1]
    std = np.asarray(norm.std, np.float32)
    tensor = image.astype(np.float32) * (np.float32(norm.scale) / std) - np.asarray(norm.mean, np.float32) / std
    if spec.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None])


_NORMS = {
    "demo (x/127.5 - 1)": Normalization(scale=1 / 127.5, mean=(1.0, 1.0, 1.0)),
    "x/255": Normalization(),
    "raw 0..255": Normalization(scale=1.0),
    "ImageNet, per channel": Normalization(scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
}


@pytest.mark.parametrize("norm", list(_NORMS.values()), ids=list(_NORMS))
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_vectorised_normalize_gives_the_old_tensor_within_1e_6(norm: Normalization, layout: str, color: str) -> None:
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (45, 70, 3), np.uint8)
    frame[0, :2] = [[0, 0, 0], [255, 255, 255]]
    image = frame[3:40, 5:66]  # a view, as a tile cut from a frame is
    spec = InputSpec.model_validate({"width": 61, "height": 37, "layout": layout, "color": color})
    ours, before = normalize(image, spec, norm), _numpy_normalize(image, spec, norm)
    assert ours.shape == before.shape and ours.dtype == np.float32 and ours.flags.c_contiguous
    assert float(np.abs(ours - before).max()) <= 1e-6
