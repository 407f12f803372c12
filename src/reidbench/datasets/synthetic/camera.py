"""Cameras of the synthetic set: what a camera does to the person it sees.

Each camera has a fixed scene (background texture), a light and colour cast, a
typical viewpoint (a corridor camera sees people from the front and back, a
street camera from the side), a blur and resolution, an occlusion habit and a
JPEG quality. A track is one walk of one person through one camera; shots are
the frames cropped from that walk. Everything is drawn from a numpy Generator
the caller seeds, so the output depends only on the seed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from reidbench.datasets.synthetic.identity import RGB, Identity, uniform, weighted_index
from reidbench.datasets.synthetic.render import HEADINGS, Pose, draw_person, shade
from reidbench.datasets.synthetic.scene import Campus, make_scene

WIDTH, HEIGHT = 64, 128  # the crop size written to disk (Market-1501 size)
SUPERSAMPLE = 2  # draw at 2x and reduce: anti-aliased edges for ~2x drawing cost
_CW, _CH = WIDTH * SUPERSAMPLE, HEIGHT * SUPERSAMPLE
_MARGIN_X, _MARGIN_Y = 640, 80  # scene larger than a crop: walks see different parts
_BG_W, _BG_H = _CW + 2 * _MARGIN_X, _CH + 2 * _MARGIN_Y

VIEW_HABITS = {
    "corridor": (0.42, 0.42, 0.08, 0.08),  # front, back, left, right
    "crossing": (0.10, 0.10, 0.40, 0.40),
    "plaza": (0.25, 0.25, 0.25, 0.25),
}
OCCLUDERS = ("pole", "car", "person", "bench")
OCCLUDER_COLOURS: tuple[tuple[RGB, float], ...] = (  # cars, poles, benches, coats
    ((30, 30, 32), 0.30),
    ((120, 122, 126), 0.20),
    ((170, 172, 176), 0.20),
    ((225, 225, 222), 0.15),
    ((150, 40, 40), 0.08),
    ((40, 60, 130), 0.07),
)
# Difficulty knobs, tuned so a colour-histogram matcher lands between chance and perfect
# (docs/synthetic.md): camera light level, colour cast (s.d. of the per-channel log
# gain), the brightness of one walk, and the box stretch.
BRIGHTNESS = (0.93, 1.07)
CAST_SIGMA = 0.02
WALK_LIGHT = (0.95, 1.05)  # sun, shade, lamps: one walk through one camera
STRETCH = (1.3, 1.6)  # a detector box narrower than 1:2, resized to 64x128
RESOLUTIONS = (1.0, 1.0, 0.85, 0.75)  # what a camera resolves, relative to the crop size
BLUR_FLOOR = (0.0, 0.6)  # least blur of a camera (box radius, output pixels)
JPEG_FLOOR = (55, 86)  # lowest JPEG quality of a camera
OCCLUSION_RATE = (0.05, 0.22)  # share of a camera's crops with something in front


@dataclass(frozen=True, slots=True)
class CameraProfile:
    cam: int  # 1-based, as in the file names
    scene: str
    habit: str  # key of VIEW_HABITS
    background: Image.Image  # RGB, _BG_W x _BG_H, supersampled, camera colour cast applied
    noise: Image.Image  # RGB sensor-noise tile centred on 128, larger than a crop
    gain: tuple[float, float, float]  # per-channel light and colour cast
    scale: tuple[float, float]  # range of person scale in the crop
    blur: tuple[float, float]  # Gaussian radius range, output pixels
    resolution: float  # < 1: the camera resolves less than the crop size
    jpeg_quality: tuple[int, int]
    occlusion_rate: float
    occluder: str  # this camera's most common occluder

    def describe(self) -> dict[str, object]:
        return {
            "cam": self.cam,
            "scene": self.scene,
            "viewpoints": self.habit,
            "gain": [round(g, 3) for g in self.gain],
            "blur": [round(v, 2) for v in self.blur],
            "resolution": round(self.resolution, 2),
            "jpeg_quality": list(self.jpeg_quality),
            "occlusion_rate": round(self.occlusion_rate, 3),
            "occluder": self.occluder,
        }


@dataclass(frozen=True, slots=True)
class Track:
    """One walk of one person through one camera."""

    heading: str
    scale: float
    dx: float  # horizontal offset of the body centre, fraction of crop width
    dy: float  # vertical offset, fraction of crop height
    phase: float
    bg_x: int
    bg_y: int
    light: float  # this walk's brightness (clouds, lamps, where in the scene)
    stretch: float  # detector box narrower than 1:2, resized to 64x128: people look wider


@dataclass(frozen=True, slots=True)
class Shot:
    """Everything that makes one frame of a track."""

    pose_scale: float
    dx: float
    dy: float
    heading: str
    phase: float
    bg_x: int
    bg_y: int
    light: float
    blur: float
    quality: int
    occluder: tuple[str, float, float, RGB] | None  # kind, position, size, colour
    noise_x: int
    noise_y: int
    stretch: float = 1.0


# ---------------------------------------------------------------- cameras --------------


STRATA = 6  # camera properties spread over their range, see `camera_strata`


def camera_strata(rng: np.random.Generator, cameras: int) -> np.ndarray:
    """(cameras, STRATA) quantiles in [0, 1), each column a shuffled stratified sample.

    Every camera set then spans the range of each property (one sharp camera, one
    blurry one, ...), which keeps the difficulty of a set steady from seed to seed.
    """
    cols = [(rng.permutation(cameras) + rng.random(cameras)) / cameras for _ in range(STRATA)]
    return np.stack(cols, axis=1)


def _between(lo_hi: tuple[float, float], u: float) -> float:
    return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * float(u)


def make_camera(
    rng: np.random.Generator, cam: int, campus: Campus, strata: np.ndarray
) -> CameraProfile:
    """Camera `cam` (1-based): where it looks on the campus and what it does to light.

    `strata` is this camera's row of `camera_strata`: quantiles for its viewpoint
    habit, brightness, blur, resolution, occlusion rate and JPEG quality.
    """
    scene, background = make_scene(rng, campus, _BG_W, _BG_H, _CW)
    u_habit, u_light, u_blur, u_res, u_occ, u_jpeg = (float(v) for v in strata)
    brightness = _between(BRIGHTNESS, u_light)
    cast = rng.normal(0.0, CAST_SIGMA, 3)
    gain = tuple(float(brightness * math.exp(c)) for c in cast)
    blur_lo = _between(BLUR_FLOOR, u_blur)
    q_lo = int(_between(JPEG_FLOOR, u_jpeg))
    s_lo = float(rng.uniform(0.88, 0.94))
    noise = rng.normal(128.0, float(rng.uniform(2.0, 7.0)), (HEIGHT + 64, WIDTH + 64, 3))
    return CameraProfile(
        cam=cam,
        scene=scene,
        habit=tuple(VIEW_HABITS)[int(u_habit * len(VIEW_HABITS))],
        background=background.convert(
            "RGB", (*(gain[0], 0, 0, 0), *(0, gain[1], 0, 0), *(0, 0, gain[2], 0))
        ),
        noise=Image.fromarray(np.clip(np.round(noise), 0, 255).astype(np.uint8), "RGB"),
        gain=(gain[0], gain[1], gain[2]),
        scale=(s_lo, s_lo + float(rng.uniform(0.03, 0.07))),
        blur=(blur_lo, blur_lo + float(rng.uniform(0.2, 0.8))),
        resolution=RESOLUTIONS[int(u_res * len(RESOLUTIONS))],
        jpeg_quality=(q_lo, min(97, q_lo + int(rng.integers(5, 15)))),
        occlusion_rate=_between(OCCLUSION_RATE, u_occ),
        occluder=OCCLUDERS[int(rng.integers(len(OCCLUDERS)))],
    )


# ---------------------------------------------------------------- tracks and shots -----


def sample_track(rng: np.random.Generator, camera: CameraProfile) -> Track:
    return Track(
        heading=HEADINGS[weighted_index(rng, VIEW_HABITS[camera.habit])],
        scale=uniform(rng, *camera.scale),
        dx=float(rng.normal(0.0, 0.05)),
        dy=float(rng.normal(0.0, 0.02)),
        phase=uniform(rng, 0, 2 * math.pi),
        bg_x=int(rng.integers(0, 2 * _MARGIN_X)),
        bg_y=int(rng.integers(0, 2 * _MARGIN_Y)),
        light=uniform(rng, *WALK_LIGHT),
        stretch=uniform(rng, *STRETCH),
    )


def sample_shot(rng: np.random.Generator, camera: CameraProfile, track: Track, k: int) -> Shot:
    """Frame `k` of `track`: consecutive frames look alike, as detections in a video do."""
    heading = track.heading
    if rng.random() < 0.08:  # the person turns, stops, looks around
        heading = HEADINGS[int(rng.integers(4))]
    walking = heading in ("left", "right")
    drift = (k * 14 if walking else k * 3) * (1 if heading != "left" else -1)
    occluder = None
    if rng.random() < camera.occlusion_rate:
        kind = camera.occluder if rng.random() < 0.7 else OCCLUDERS[int(rng.integers(4))]
        colour = OCCLUDER_COLOURS[weighted_index(rng, tuple(w for _, w in OCCLUDER_COLOURS))][0]
        occluder = (kind, rng.random(), uniform(rng, 0.15, 0.4), colour)
    return Shot(
        pose_scale=track.scale * float(1.0 + rng.normal(0.0, 0.03)),
        dx=track.dx + float(rng.normal(0.0, 0.035)),
        dy=track.dy + float(rng.normal(0.0, 0.015)),
        heading=heading,
        phase=track.phase + k * 1.1 + float(rng.normal(0.0, 0.3)),
        bg_x=min(2 * _MARGIN_X, max(0, track.bg_x + drift + int(rng.integers(-4, 5)))),
        bg_y=min(2 * _MARGIN_Y, max(0, track.bg_y + int(rng.integers(-3, 4)))),
        light=track.light * uniform(rng, 0.95, 1.05),
        blur=uniform(rng, *camera.blur),
        quality=int(rng.integers(camera.jpeg_quality[0], camera.jpeg_quality[1] + 1)),
        occluder=occluder,
        noise_x=int(rng.integers(0, 64)),
        noise_y=int(rng.integers(0, 64)),
        stretch=track.stretch * uniform(rng, 0.97, 1.03),
    )


# ---------------------------------------------------------------- rendering ------------


def _draw_occluder(
    draw: ImageDraw.ImageDraw, occ: tuple[str, float, float, RGB], cw: float
) -> None:
    """Something between camera and person; `cw` is the width of this (stretched) canvas."""
    kind, pos, size, colour = occ
    ch = _CH
    if kind == "pole":
        x, w = pos * cw, size * 0.35 * cw
        draw.rectangle((x - w / 2, 0, x + w / 2, ch), fill=shade(colour, 0.5))
    elif kind == "car":  # bonnet or roof across the bottom of the crop
        top = ch * (1.0 - size)
        draw.rounded_rectangle((-20, top, cw + 20, ch + 20), radius=18, fill=colour)
        draw.rectangle((-20, top + 10, cw + 20, top + 16), fill=shade(colour, 1.3))
    elif kind == "person":  # another pedestrian's shoulder entering from one side
        w = size * cw * 1.4
        x0 = -w * 0.4 if pos < 0.5 else cw - w * 0.6
        draw.rounded_rectangle((x0, ch * 0.25, x0 + w, ch + 10), radius=int(w / 3), fill=colour)
        hx = x0 + w / 2
        draw.ellipse((hx - w * 0.25, ch * 0.08, hx + w * 0.25, ch * 0.28), fill=shade(colour, 0.4))
    else:  # bench or railing: horizontal bars in front of the legs
        y0 = ch * (0.55 + 0.25 * pos)
        for i in range(3):
            draw.rectangle((-5, y0 + i * 14, cw + 5, y0 + i * 14 + 5), fill=shade(colour, 0.6))


def _tint_rgb(rgb: RGB, gain: tuple[float, float, float]) -> RGB:
    return (
        min(255, round(rgb[0] * gain[0])),
        min(255, round(rgb[1] * gain[1])),
        min(255, round(rgb[2] * gain[2])),
    )


_COLOUR_FIELDS = tuple(f.name for f in fields(Identity) if f.name.endswith("_rgb"))


@functools.lru_cache(maxsize=4096)
def tinted(who: Identity, gain: tuple[float, float, float]) -> Identity:
    """`who` as this camera renders its colours (cast applied to the paint, not the pixels).

    The cast is linear, so tinting the colours before drawing and blurring equals
    tinting the pixels after, at a fraction of the cost.
    """
    tints: dict[str, Any] = {f: _tint_rgb(getattr(who, f), gain) for f in _COLOUR_FIELDS}
    return replace(who, **tints)


def render_shot(
    who: Identity | None, camera: CameraProfile, shot: Shot, *, zoom: float = 1.0
) -> Image.Image:
    """One 64x128 RGB crop. `who=None` renders background only; `zoom` > 1 is a bad crop."""
    canvas = camera.background.crop((shot.bg_x, shot.bg_y, shot.bg_x + _CW, shot.bg_y + _CH))
    draw = ImageDraw.Draw(canvas)
    if who is not None:
        height = _CH * who.height * shot.pose_scale * zoom
        top = (_CH - height) / 2 + shot.dy * _CH
        if zoom > 1.0:  # fragments: a crop that cut a person's legs or torso only
            top -= (zoom - 1.0) * height * 0.35 * (1 + math.sin(shot.phase))
        pose = Pose(
            cx=_CW / 2 + shot.dx * _CW,
            top=top,
            height=height,
            heading=shot.heading,
            phase=shot.phase,
        )
        # The detector's box is narrower than 1:2; resized to 64x128 it widens the person.
        draw_person(draw, tinted(who, camera.gain), pose, shot.stretch)
    if shot.occluder is not None:
        kind, pos, size, colour = shot.occluder
        _draw_occluder(draw, (kind, pos, size, _tint_rgb(colour, camera.gain)), _CW)
    img = canvas.reduce(SUPERSAMPLE)
    # A camera that resolves less than the crop size looks like extra blur at this size;
    # a box blur is 3x cheaper than PIL's Gaussian and indistinguishable after JPEG. Below
    # 0.4 px the 2x reduction's own softening is blur enough (and saves ~15% of the time).
    radius = shot.blur + (1.0 / camera.resolution - 1.0)
    if radius >= 0.4:
        img = img.filter(ImageFilter.BoxBlur(radius))
    noise = camera.noise.crop(
        (shot.noise_x, shot.noise_y, shot.noise_x + WIDTH, shot.noise_y + HEIGHT)
    )
    # (img + noise) * light - 128 * light: this walk's light level and sensor noise in one pass.
    return ImageChops.add(img, noise, 1.0 / shot.light, -round(128 * shot.light))
