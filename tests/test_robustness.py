"""The robustness shifts, done in NumPy, give what scipy.ndimage gives (which they were first written with)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mnistlab.experiments.robustness import SHIFTS, _turned

DIRECTIONS = [(-1, 0), (1, 0), (0, -1), (0, 1)]  # up, down, left, right: the order _translate draws them in


@pytest.fixture(scope="module")
def images(fashion):
    """Real images, and random ones, whose edges are not black."""
    real = fashion.x_test[:200].astype(np.float32) / 255
    noise = np.random.default_rng(0).random((50, 28, 28), dtype=np.float32)
    return np.concatenate([real, noise])


@pytest.mark.parametrize("degrees", [5, 10, 15, 20, -5, -10, -15, -20, 7.3, -7.3, 45, 90, -180])
def test_a_turn_is_scipys_bilinear_rotation(images, degrees):
    expected = ndimage.rotate(images, degrees, axes=(2, 1), reshape=False, order=1, mode="constant")
    turned = _turned(images, degrees)
    assert turned.dtype == np.float32
    np.testing.assert_allclose(turned, expected, rtol=0, atol=1e-6)


def test_a_positive_turn_is_anticlockwise():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 13:15, 24:26] = 1  # right of the centre
    assert set(zip(*np.nonzero(_turned(image, 90)[0]))) == {(2, 13), (2, 14), (3, 13), (3, 14)}  # above it


def test_rotation_turns_each_image_its_own_seeded_way(images):
    rotated = SHIFTS["rotation"].apply(images, 7.3, np.random.default_rng(3))
    clockwise = np.random.default_rng(3).random(len(images)) < 0.5
    angles = np.where(clockwise, -7.3, 7.3)
    expected = [ndimage.rotate(image, angle, reshape=False, order=1, mode="constant")
                for image, angle in zip(images, angles)]
    np.testing.assert_allclose(rotated, np.clip(expected, 0, 1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("pixels", [1, 2, 3, 4])
def test_translation_is_scipys_whole_pixel_shift_in_every_direction(images, pixels):
    moved = SHIFTS["translation"].apply(images, pixels, np.random.default_rng(1))
    steps = np.array(DIRECTIONS)[np.random.default_rng(1).integers(0, 4, len(images))] * pixels
    assert {tuple(step) for step in steps} == {(dy * pixels, dx * pixels) for dy, dx in DIRECTIONS}
    expected = [ndimage.shift(image, step, order=0, mode="constant", cval=0.0) for image, step in zip(images, steps)]
    np.testing.assert_array_equal(moved, expected)
    assert moved.dtype == images.dtype
