"""What a viewpoint shows, and how much different people look alike."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageDraw

from reidbench.datasets.synthetic.identity import Identity, sample_identity
from reidbench.datasets.synthetic.render import HEADINGS, Pose, draw_person

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def person(**changes: object) -> Identity:
    """A plain grey person; tests paint one element in a colour nothing else uses."""
    base = sample_identity(np.random.default_rng(0))
    plain = dict(
        upper_rgb=(128, 128, 128),
        upper_accent_rgb=(128, 128, 128),
        lower_rgb=(60, 60, 60),
        skin_rgb=(200, 160, 130),
        hair_rgb=(30, 20, 20),
        shoes_rgb=(20, 20, 20),
        bag_rgb=(90, 90, 90),
        hat_rgb=(90, 90, 90),
        pattern="plain",
        bag="none",
        hat="none",
        hair_length="short",
        lower_kind="trousers",
        sleeves="long",
        build=1.0,
    )
    return dataclasses.replace(base, **{**plain, **changes})


def pixels(who: Identity, heading: str, colour: tuple[int, int, int]) -> int:
    """Pixels of exactly `colour` (PIL polygons are not anti-aliased) plus 10% shades."""
    img = Image.new("RGB", (128, 256), (255, 255, 255))
    draw_person(
        ImageDraw.Draw(img), who, Pose(cx=64, top=10, height=236, heading=heading, phase=0.7)
    )
    a = np.asarray(img).astype(int)
    target = np.array(colour)
    lit = target > 0
    close = np.all(np.abs(a[..., ~lit] - target[~lit]) <= 5, axis=-1)
    bright = np.all(a[..., lit] >= target[lit] * 0.75, axis=-1)
    return int(np.sum(close & bright))


def test_logo_only_from_the_front() -> None:
    who = person(pattern="logo", upper_accent_rgb=RED, logo_shape="square")
    assert pixels(who, "front", RED) > 100
    assert [pixels(who, h, RED) for h in ("back", "left", "right")] == [0, 0, 0]


def test_backpack_body_from_behind_straps_from_the_front() -> None:
    who = person(bag="backpack", bag_rgb=GREEN)
    back, front = pixels(who, "back", GREEN), pixels(who, "front", GREEN)
    side = min(pixels(who, "left", GREEN), pixels(who, "right", GREEN))
    assert back > 3000
    assert 0 < front < back / 4  # two straps
    assert front < side < back  # the pack sticks out behind the shoulders


def test_shirt_under_open_jacket_shows_from_the_front_only() -> None:
    who = person(pattern="jacket", upper_accent_rgb=BLUE)
    front, back = pixels(who, "front", BLUE), pixels(who, "back", BLUE)
    side = pixels(who, "right", BLUE)
    assert back == 0 and 0 < side < front


def test_long_hair_covers_the_back() -> None:
    who = person(hair_length="long", hair_rgb=RED)
    assert pixels(who, "back", RED) > 2 * pixels(who, "front", RED) > 0


def test_handbag_and_stripes_are_seen_from_every_side() -> None:
    bag = person(bag="handbag", bag_rgb=GREEN)
    stripes = person(pattern="stripes", upper_accent_rgb=RED)
    for heading in HEADINGS:
        assert pixels(stripes, heading, RED) > 100, heading
    # From the side the bag hangs on the near or far hand; from the front or back always.
    assert pixels(bag, "front", GREEN) > 100 and pixels(bag, "back", GREEN) > 100
    assert max(pixels(bag, "left", GREEN), pixels(bag, "right", GREEN)) > 100


@pytest.mark.parametrize("seed", [0, 1])
def test_people_often_share_attributes(seed: int) -> None:
    people = [sample_identity(np.random.default_rng([seed, i])) for i in range(300)]
    tops = Counter(p.upper for p in people)
    assert tops.most_common(1)[0][1] >= 0.15 * len(people)  # many wear black
    keys = (
        "upper",
        "lower",
        "lower_kind",
        "shoes",
        "bag",
        "hair",
        "sleeves",
        "pattern",
        "hat",
        "skin",
        "hair_length",
    )
    shared = [
        sum(getattr(a, k) == getattr(b, k) for k in keys)
        for a, b in itertools.combinations(people, 2)
    ]
    assert np.mean(shared) >= 3.0
    same_clothes = np.mean(
        [(a.upper, a.lower) == (b.upper, b.lower) for a, b in itertools.combinations(people, 2)]
    )
    assert same_clothes >= 0.01  # with 100 people: dozens of pairs dressed alike
    assert len({p for p in people}) == len(people)  # yet no two people are identical
