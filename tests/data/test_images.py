"""Reading images of every Pillow mode, fitting them to an InputSpec, ImageFolder."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from convscope.data.images import (
    ImageFolder,
    fit_to_spec,
    image_to_tensor,
    load_image,
    match_channels,
    read_pixels,
    to_pixels,
)
from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.errors import ImageError


def save_load(img: Image.Image, path: Path, **kw) -> Image.Image:
    """Save ``img`` to ``path`` and read it back with :func:`load_image`."""
    img.save(path, **kw)
    return load_image(path)


# --------------------------------------------------------------------------- modes


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("PNG", "png"), ("BMP", "bmp"), ("TIFF", "tif"), ("GIF", "gif")]
)
def test_mode_1_gives_0_and_255(tmp_path: Path, fmt: str, suffix: str) -> None:
    img = Image.new("1", (4, 2), 0)
    img.putpixel((1, 0), 1)
    px = to_pixels(save_load(img, tmp_path / f"a.{suffix}", format=fmt), 1)
    assert px.dtype == np.uint8 and px.shape == (2, 4)
    assert px[0, 1] == 255 and px.sum() == 255


@pytest.mark.parametrize("suffix", ["png", "bmp", "tif", "gif", "webp"])
def test_mode_l_round_trips_losslessly(tmp_path: Path, suffix: str) -> None:
    values = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    kw = {"lossless": True} if suffix == "webp" else {}
    img = save_load(Image.fromarray(values), tmp_path / f"a.{suffix}", **kw)
    np.testing.assert_array_equal(to_pixels(img, 1), values)


def test_mode_l_jpeg_is_close(tmp_path: Path) -> None:
    img = save_load(Image.new("L", (8, 8), 200), tmp_path / "a.jpg", quality=95)
    assert img.mode == "L"
    assert np.abs(to_pixels(img, 1).astype(int) - 200).max() <= 2


def test_gray_to_rgb_repeats_the_value(tmp_path: Path) -> None:
    img = save_load(Image.new("L", (3, 2), 77), tmp_path / "a.png")
    px = to_pixels(img, 3)
    assert px.shape == (2, 3, 3) and (px == 77).all()


def test_la_alpha_is_composited_over_black_by_default(tmp_path: Path) -> None:
    img = Image.new("LA", (2, 1), (200, 255))
    img.putpixel((1, 0), (200, 0))
    loaded = save_load(img, tmp_path / "a.png")
    assert loaded.mode == "LA"
    np.testing.assert_array_equal(to_pixels(loaded, 1), [[200, 0]])
    np.testing.assert_array_equal(to_pixels(loaded, 1, background=255), [[200, 255]])


def test_la_half_alpha_blends() -> None:
    img = Image.new("LA", (1, 1), (200, 128))
    assert to_pixels(img, 1)[0, 0] == round(200 * 128 / 255)


def test_premultiplied_la_is_read() -> None:
    img = Image.new("La", (1, 1), (100, 255))
    assert to_pixels(img, 1)[0, 0] == 100


def test_rgba_alpha_zero_over_black_is_black(tmp_path: Path) -> None:
    img = Image.new("RGBA", (2, 1), (255, 255, 255, 0))
    img.putpixel((1, 0), (10, 20, 30, 255))
    loaded = save_load(img, tmp_path / "a.png")
    px = to_pixels(loaded, 3)
    np.testing.assert_array_equal(px[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(px[0, 1], [10, 20, 30])
    np.testing.assert_array_equal(to_pixels(loaded, 3, background=(1, 2, 3))[0, 0], [1, 2, 3])


def test_rgba_to_gray_uses_itu_601_luma() -> None:
    img = Image.new("RGBA", (1, 1), (255, 0, 0, 255))
    # Pillow: L = R * 299/1000 + G * 587/1000 + B * 114/1000
    assert to_pixels(img, 1)[0, 0] == 76


def test_premultiplied_rgba_is_read() -> None:
    img = Image.new("RGBa", (1, 1), (100, 50, 0, 255))
    np.testing.assert_array_equal(to_pixels(img, 3)[0, 0], [100, 50, 0])


@pytest.mark.parametrize("suffix", ["png", "bmp", "gif", "tif"])
def test_palette_gives_the_palette_colours(tmp_path: Path, suffix: str) -> None:
    img = Image.new("P", (2, 1), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    img.putpixel((1, 0), 1)
    px = to_pixels(save_load(img, tmp_path / f"a.{suffix}"), 3)
    np.testing.assert_array_equal(px[0], [[255, 0, 0], [0, 0, 255]])


@pytest.mark.parametrize("suffix", ["png", "gif"])
def test_palette_transparency_is_composited(tmp_path: Path, suffix: str) -> None:
    img = Image.new("P", (2, 1), 0)
    img.putpalette([255, 255, 255, 0, 255, 0] + [0] * (256 * 3 - 6))
    img.putpixel((1, 0), 1)
    loaded = save_load(img, tmp_path / f"a.{suffix}", transparency=0)
    px = to_pixels(loaded, 3)
    np.testing.assert_array_equal(px[0], [[0, 0, 0], [0, 255, 0]])


def test_pa_mode_is_composited() -> None:
    img = Image.new("PA", (1, 1), (0, 0))
    img.putpalette([255, 255, 255] * 256)
    assert (to_pixels(img, 3) == 0).all()


def test_colour_key_transparency_is_composited(tmp_path: Path) -> None:
    img = Image.new("RGB", (2, 1), (9, 9, 9))
    img.putpixel((1, 0), (50, 60, 70))
    loaded = save_load(img, tmp_path / "a.png", transparency=(9, 9, 9))
    px = to_pixels(loaded, 3)
    np.testing.assert_array_equal(px[0], [[0, 0, 0], [50, 60, 70]])


def test_rgb_round_trips(tmp_path: Path) -> None:
    values = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for suffix in ("png", "bmp", "tif"):
        img = save_load(Image.fromarray(values), tmp_path / f"a.{suffix}")
        np.testing.assert_array_equal(to_pixels(img, 3), values)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_16_bit_is_divided_by_257(tmp_path: Path, mode: str) -> None:
    img = Image.new(mode, (4, 1), 0)
    for x, v in enumerate([0, 257, 65535, 32896]):
        img.putpixel((x, 0), v)
    expected = [[0, 1, 255, 128]]
    np.testing.assert_array_equal(to_pixels(img, 1), expected)
    loaded = save_load(img, tmp_path / "a.tif")
    assert loaded.mode.startswith("I;16")
    np.testing.assert_array_equal(to_pixels(loaded, 1), expected)


def test_16_bit_png(tmp_path: Path) -> None:
    img = Image.new("I;16", (2, 1), 65535)
    img.putpixel((0, 0), 0)
    loaded = save_load(img, tmp_path / "a.png")
    np.testing.assert_array_equal(to_pixels(loaded, 1), [[0, 255]])
    np.testing.assert_array_equal(to_pixels(loaded, 3)[0, 1], [255, 255, 255])


def test_32_bit_int_uses_image_range(tmp_path: Path) -> None:
    img = Image.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32))
    assert img.mode == "I"
    loaded = save_load(img, tmp_path / "a.tif")
    np.testing.assert_array_equal(to_pixels(loaded, 1), [[0, 128, 255]])


def test_float_uses_image_range(tmp_path: Path) -> None:
    values = np.array([[0.25, 0.5, 0.75]], dtype=np.float32)
    loaded = save_load(Image.fromarray(values), tmp_path / "a.tif")
    assert loaded.mode == "F"
    np.testing.assert_array_equal(to_pixels(loaded, 1), [[0, 128, 255]])


def test_float_nan_and_inf() -> None:
    values = np.array([[np.nan, 0.0, 1.0, np.inf, -np.inf]], dtype=np.float32)
    px = to_pixels(Image.fromarray(values), 1)
    np.testing.assert_array_equal(px, [[0, 0, 255, 255, 0]])


def test_float_all_nan_is_an_error() -> None:
    img = Image.fromarray(np.full((2, 2), np.nan, dtype=np.float32))
    with pytest.raises(ImageError, match="NaN"):
        to_pixels(img, 1)


def test_constant_float_image_is_zero() -> None:
    img = Image.fromarray(np.full((2, 2), 3.5, dtype=np.float32))
    assert (to_pixels(img, 1) == 0).all()


@pytest.mark.parametrize("suffix", ["jpg", "tif"])
def test_cmyk_pure_cyan(tmp_path: Path, suffix: str) -> None:
    img = Image.new("CMYK", (2, 2), (255, 0, 0, 0))
    loaded = save_load(img, tmp_path / f"a.{suffix}")
    assert loaded.mode == "CMYK"
    px = to_pixels(loaded, 3).astype(int)
    assert np.abs(px - [0, 255, 255]).max() <= 2


def test_ycbcr(tmp_path: Path) -> None:
    img = Image.new("RGB", (2, 2), (0, 0, 255)).convert("YCbCr")
    loaded = save_load(img, tmp_path / "a.tif")
    assert loaded.mode == "YCbCr"
    assert np.abs(to_pixels(loaded, 3).astype(int) - [0, 0, 255]).max() <= 2


def test_lab(tmp_path: Path) -> None:
    rgb = Image.new("RGB", (2, 2), (255, 0, 0))
    lab = ImageCms.profileToProfile(
        rgb, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), outputMode="LAB"
    )
    loaded = save_load(lab, tmp_path / "a.tif")
    assert loaded.mode == "LAB"
    assert np.abs(to_pixels(loaded, 3).astype(int) - [255, 0, 0]).max() <= 6


def test_hsv() -> None:
    img = Image.new("RGB", (2, 2), (0, 255, 0)).convert("HSV")
    np.testing.assert_array_equal(to_pixels(img, 3)[0, 0], [0, 255, 0])


def test_natural_channels() -> None:
    assert to_pixels(Image.new("L", (2, 3))).shape == (3, 2)
    assert to_pixels(Image.new("I;16", (2, 3))).shape == (3, 2)
    assert to_pixels(Image.new("RGBA", (2, 3))).shape == (3, 2, 3)
    assert to_pixels(Image.new("P", (2, 3))).shape == (3, 2, 3)


def test_zero_size_image_is_an_error() -> None:
    with pytest.raises(ImageError, match="0x3"):
        to_pixels(Image.new("L", (0, 3)), 1)


def test_bad_channels_and_background() -> None:
    img = Image.new("L", (2, 2))
    with pytest.raises(ImageError, match="channels"):
        to_pixels(img, 2)
    with pytest.raises(ImageError, match="background"):
        to_pixels(img, 1, background=300)


# --------------------------------------------------------------------------- files


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (4, 4), 10), Image.new("L", (4, 4), 240)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = load_image(path)
    assert (to_pixels(img, 1) == 10).all()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    values = np.zeros((2, 4), dtype=np.uint8)
    values[0, 0] = 255
    img = Image.fromarray(values)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.png"
    img.save(path, exif=exif)
    px = to_pixels(load_image(path), 1)
    assert px.shape == (4, 2)
    assert px[0, 1] == 255


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(ImageError, match="not found") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="directory") as info:
        load_image(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_non_image_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, not an image")
    with pytest.raises(ImageError, match="not an image") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_png(tmp_path: Path) -> None:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated") as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_jpeg(tmp_path: Path) -> None:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[:1000])
    with pytest.raises(ImageError, match=r"cut\.jpg"):
        load_image(path)


def test_read_pixels_names_the_file_on_conversion_errors(tmp_path: Path) -> None:
    path = tmp_path / "nan.tif"
    Image.fromarray(np.full((2, 2), np.nan, dtype=np.float32)).save(path)
    with pytest.raises(ImageError, match=r"nan\.tif"):
        read_pixels(path, 1)


# --------------------------------------------------------------------------- sizing


def white(h: int, w: int, c: int | None = None) -> np.ndarray:
    """A white uint8 image of ``h x w`` (``x c``)."""
    return np.full((h, w) if c is None else (h, w, c), 255, dtype=np.uint8)


def spec(h: int, w: int, policy: str, channels: int = 1, **kw) -> InputSpec:
    """An InputSpec with zero mean and unit std."""
    return InputSpec(channels=channels, height=h, width=w, resize=ResizePolicy(policy), **kw)


def test_letterbox_wide_image_gives_centred_band() -> None:
    out = fit_to_spec(white(10, 20), spec(28, 28, "letterbox"))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    rows = np.flatnonzero(out.max(axis=1) > 0)
    assert (rows[0], rows[-1]) == (7, 20)  # 14 rows, centred
    assert (out[7:21] == 255).all() and (out[:7] == 0).all() and (out[21:] == 0).all()


def test_letterbox_tall_image_and_downscale() -> None:
    out = fit_to_spec(white(100, 50), spec(28, 28, "letterbox"))
    cols = np.flatnonzero(out.max(axis=0) > 0)
    assert (cols[0], cols[-1]) == (7, 20)


def test_letterbox_upscales_small_image() -> None:
    out = fit_to_spec(white(7, 7), spec(28, 28, "letterbox"))
    assert (out == 255).all()


def test_pad_keeps_original_pixels_at_offset() -> None:
    src = np.random.default_rng(0).integers(1, 256, (28, 28), dtype=np.uint8)
    out = fit_to_spec(src, spec(32, 32, "pad"))
    assert out.shape == (32, 32)
    np.testing.assert_array_equal(out[2:30, 2:30], src)
    assert out[:2].sum() == 0 and out[30:].sum() == 0 and out[:, :2].sum() == 0


def test_pad_scales_down_a_larger_image() -> None:
    out = fit_to_spec(white(64, 32), spec(32, 32, "pad"))
    cols = np.flatnonzero(out.max(axis=0) > 0)
    assert (cols[0], cols[-1]) == (8, 23)


def test_resize_ignores_aspect_ratio() -> None:
    out = fit_to_spec(white(10, 40), spec(28, 28, "resize"))
    assert out.shape == (28, 28) and (out == 255).all()


def test_center_crop_default_covers_target() -> None:
    src = np.zeros((10, 30), dtype=np.uint8)
    src[:, 10:20] = 255  # the middle third
    out = fit_to_spec(src, spec(10, 10, "center-crop"))
    assert out.shape == (10, 10) and (out == 255).all()


def test_center_crop_with_resize_to() -> None:
    src = np.zeros((40, 40), dtype=np.uint8)
    src[8:32, 8:32] = 255
    out = fit_to_spec(src, spec(10, 10, "center-crop", resize_to=20))
    assert (out == 255).all()  # 40 -> 20: the square is 4:16, the crop 5:15
    whole = fit_to_spec(src, spec(10, 10, "center-crop"))
    assert whole[0, 0] == 0  # without resize_to the whole image is scaled to 10x10


def test_center_crop_keeps_centre_content() -> None:
    src = np.zeros((32, 32), dtype=np.uint8)
    src[4:28, 4:28] = np.arange(24, dtype=np.uint8)[:, None] + 100
    out = fit_to_spec(src, spec(24, 24, "center-crop", resize_to=32))
    np.testing.assert_array_equal(out, src[4:28, 4:28])


def test_fit_converts_channels() -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    gray = fit_to_spec(rgb, spec(4, 4, "resize"))
    assert gray.shape == (4, 4) and (gray == 76).all()
    colour = fit_to_spec(white(4, 4), spec(4, 4, "resize", channels=3))
    assert colour.shape == (4, 4, 3) and (colour == 255).all()
    assert fit_to_spec(white(4, 4, 1), spec(4, 4, "resize")).shape == (4, 4)


def test_fit_rejects_bad_pixels() -> None:
    s = spec(4, 4, "resize")
    with pytest.raises(ImageError, match="uint8"):
        fit_to_spec(np.zeros((4, 4), dtype=np.float32), s)
    with pytest.raises(ImageError, match="shape"):
        fit_to_spec(np.zeros((4, 4, 4), dtype=np.uint8), s)
    with pytest.raises(ImageError, match="empty"):
        fit_to_spec(np.zeros((0, 4), dtype=np.uint8), s)


def test_match_channels_rejects_bad_shape() -> None:
    with pytest.raises(ImageError, match="shape"):
        match_channels(np.zeros((2, 2, 2), dtype=np.uint8), 1)


# --------------------------------------------------------------------------- tensors


def test_image_to_tensor_matches_hand_computation(tmp_path: Path) -> None:
    values = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    path = tmp_path / "digit.png"
    Image.fromarray(values).save(path)
    s = InputSpec(channels=1, height=28, width=28, mean=(0.1307,), std=(0.3081,))
    x = image_to_tensor(path, s)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    expected = (values.astype(np.float32) / 255.0 - 0.1307) / 0.3081
    np.testing.assert_allclose(x[0, 0].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_image_to_tensor_rgb_from_pil_and_array() -> None:
    values = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    s = InputSpec(channels=3, height=8, width=8, mean=mean, std=std)
    expected = (values.astype(np.float32) / 255.0 - mean) / std
    for source in (Image.fromarray(values), values):
        x = image_to_tensor(source, s)
        assert x.shape == (1, 3, 8, 8)
        np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_image_to_tensor_gray_file_for_rgb_model(tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    Image.new("L", (5, 5), 51).save(path)
    x = image_to_tensor(path, InputSpec(channels=3, height=5, width=5))
    assert x.shape == (1, 3, 5, 5)
    assert torch.allclose(x, torch.full_like(x, 0.2))


# --------------------------------------------------------------------------- folders


def make_folder(root: Path) -> Path:
    """A two-class folder with a hidden file, a non-image and a nested image."""
    for name, value, n in (("cat", 10, 2), ("dog", 200, 3)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (6, 4), value).save(root / name / f"{i}.png")
    (root / "cat" / ".hidden.png").write_bytes(b"junk")
    (root / "cat" / "readme.txt").write_text("not an image")
    (root / "dog" / "more").mkdir()
    Image.new("RGB", (6, 4), (200, 200, 200)).save(root / "dog" / "more" / "x.jpg")
    (root / ".cache").mkdir()
    return root


def test_image_folder_lists_classes_and_images(tmp_path: Path) -> None:
    folder = ImageFolder(make_folder(tmp_path / "data"))
    assert folder.class_names == ("cat", "dog")
    assert len(folder) == 6
    assert [p.name for p in folder.paths] == ["0.png", "1.png", "0.png", "1.png", "2.png", "x.jpg"]
    np.testing.assert_array_equal(folder.labels, [0, 0, 1, 1, 1, 1])
    pixels, label = folder[0]
    assert label == 0 and pixels.shape == (4, 6) and (pixels == 10).all()
    pixels, label = folder[-1]
    assert label == 1 and pixels.shape == (4, 6, 3)
    with pytest.raises(IndexError):
        folder[6]


def test_image_folder_channels(tmp_path: Path) -> None:
    folder = ImageFolder(make_folder(tmp_path / "data"), channels=3)
    assert folder[0][0].shape == (4, 6, 3)


def test_image_folder_torch_dataset(tmp_path: Path) -> None:
    folder = ImageFolder(make_folder(tmp_path / "data"))
    ds = folder.as_torch_dataset(InputSpec(channels=1, height=8, width=8))
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    xs, ys = next(iter(loader))
    assert xs.shape == (4, 1, 8, 8) and ys.tolist() == [0, 0, 1, 1]
    assert len(ds) == 6


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        ImageFolder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="ROOT/<class name>"):
        ImageFolder(empty)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("L", (2, 2)).save(flat / "a.png")
    with pytest.raises(ImageError, match="no class sub-folders"):
        ImageFolder(flat)
    (flat / "empty_class").mkdir()
    with pytest.raises(ImageError, match="empty_class has no image files"):
        ImageFolder(flat)
    with pytest.raises(ImageError, match="not a folder"):
        ImageFolder(flat / "a.png")


def test_a_decompression_bomb_is_refused_in_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("L", (100, 100)).save(tmp_path / "bomb.png")  # 10,000 > 2 x 1,000 pixels
    with pytest.raises(ImageError, match=r"too large to decode safely.*downscale it below 2,000"):
        load_image(tmp_path / "bomb.png")


def test_a_big_but_allowed_image_loads_without_a_warning(tmp_path: Path, monkeypatch) -> None:
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("L", (40, 40), 7).save(tmp_path / "big.png")  # 1,600: PIL would warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.asarray(load_image(tmp_path / "big.png")).max() == 7


def test_an_image_scaled_up_more_than_twice_gets_a_note() -> None:
    from convscope.data.images import upscale_factor, upscale_note

    digits = InputSpec(channels=1, height=28, width=28)
    assert upscale_factor((28, 28), digits) == 1.0
    assert upscale_factor((280, 140), digits) == 1.0  # made smaller: nothing to say
    assert upscale_factor((3, 5), digits) == pytest.approx(17 / 3)  # letterboxed to 17x28
    assert upscale_note("a.png", (14, 14), digits) is None  # exactly 2x: still fine
    note = upscale_note("tiny.png", (3, 5), digits)
    assert note == (
        "tiny.png is 5x3, scaled up 5.7x to the model's 28x28 input: "
        "the model sees interpolated pixels"
    )


def test_cli_notes_an_upscaled_image(tmp_path, capsys) -> None:
    from tests.cli import run

    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((3, 5), dtype=np.uint8)).save(path)
    status, out, err = run(capsys, "predict", "lenet5", "--image", str(path), "--json")
    assert status == 0 and json.loads(out)["predictions"]
    assert "convscope: note: tiny.png is 5x3, scaled up 5.7x" in err
