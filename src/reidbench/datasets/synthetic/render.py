"""Drawing one pedestrian with PIL primitives: head, hair, torso, arms, legs, bags, hats.

The viewpoint changes what can be seen, as it does for a real camera: a chest logo
and the shirt under an open jacket only from the front, a backpack body only from
behind (its straps from the front, its side from the side), long hair over the
back from behind. Coordinates are floats in the (supersampled) canvas; the figure
is described in fractions of its pixel height so every scale uses one code path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import ImageDraw

from reidbench.datasets.synthetic.identity import RGB, Identity

HEADINGS = ("front", "back", "left", "right")
BULK = 1.2  # width of body parts relative to a slim figure (clothes add volume)


@dataclass(frozen=True, slots=True)
class Pose:
    """Where and how the person stands in the canvas."""

    cx: float  # horizontal centre of the body
    top: float  # y of the top of the head
    height: float  # pixel height from head top to shoe soles
    heading: str  # one of HEADINGS: front/back face the camera or away; left/right walk across
    phase: float  # walking phase in radians


def shade(rgb: RGB, factor: float) -> RGB:
    return (
        min(255, int(rgb[0] * factor)),
        min(255, int(rgb[1] * factor)),
        min(255, int(rgb[2] * factor)),
    )


def _limb(
    draw: ImageDraw.ImageDraw,
    p0: tuple[float, float],
    p1: tuple[float, float],
    w0: float,
    w1: float,
    fill: RGB,
) -> None:
    """A tapered quad from p0 (width w0) to p1 (width w1): arms, legs, straps."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    n = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / n, dx / n
    draw.polygon(
        [
            (p0[0] + nx * w0 / 2, p0[1] + ny * w0 / 2),
            (p1[0] + nx * w1 / 2, p1[1] + ny * w1 / 2),
            (p1[0] - nx * w1 / 2, p1[1] - ny * w1 / 2),
            (p0[0] - nx * w0 / 2, p0[1] - ny * w0 / 2),
        ],
        fill=fill,
    )


def _box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    """PIL wants x0 <= x1; mirrored side views compute them in either order."""
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


class StretchX:
    """An ImageDraw stand-in that widens everything about x = `cx` by `sx`.

    A detector box narrower than 1:2, resized to 64x128, makes people look wider;
    drawing them wider costs less than resizing every crop.
    """

    def __init__(self, draw: ImageDraw.ImageDraw, cx: float, sx: float) -> None:
        self._d, self._cx, self._sx = draw, cx, sx

    def _box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        cx, sx = self._cx, self._sx
        return cx + (box[0] - cx) * sx, box[1], cx + (box[2] - cx) * sx, box[3]

    def polygon(self, xy: list[tuple[float, float]], **kw: object) -> None:
        cx, sx = self._cx, self._sx
        self._d.polygon([(cx + (x - cx) * sx, y) for x, y in xy], **kw)  # type: ignore[arg-type]

    def rectangle(self, box: tuple[float, float, float, float], **kw: object) -> None:
        self._d.rectangle(self._box(box), **kw)  # type: ignore[arg-type]

    def rounded_rectangle(self, box: tuple[float, float, float, float], **kw: object) -> None:
        self._d.rounded_rectangle(self._box(box), **kw)  # type: ignore[arg-type]

    def ellipse(self, box: tuple[float, float, float, float], **kw: object) -> None:
        self._d.ellipse(self._box(box), **kw)  # type: ignore[arg-type]

    def chord(self, box: tuple[float, float, float, float], start: float, end: float,
              **kw: object) -> None:  # fmt: skip
        self._d.chord(self._box(box), start, end, **kw)  # type: ignore[arg-type]

    def pieslice(self, box: tuple[float, float, float, float], start: float, end: float,
                 **kw: object) -> None:  # fmt: skip
        self._d.pieslice(self._box(box), start, end, **kw)  # type: ignore[arg-type]


def draw_person(draw: ImageDraw.ImageDraw, who: Identity, pose: Pose, stretch: float = 1.0) -> None:
    """Draw `who` in `pose`, `stretch` times wider. Front/back and side views are separate
    because what is visible differs, not only the silhouette."""
    if stretch != 1.0:
        draw = StretchX(draw, pose.cx, stretch)  # type: ignore[assignment]
    if pose.heading in ("left", "right"):
        _draw_side(draw, who, pose, 1 if pose.heading == "right" else -1)
    else:
        _draw_frontal(draw, who, pose, pose.heading == "front")


# ---- shared proportions (fractions of pose.height) -------------------------------------
HEAD_H, SHOULDER_Y, HIP_Y, KNEE_Y, ANKLE_Y = 0.125, 0.155, 0.50, 0.73, 0.955


def _frontal_torso(cx: float, y: float, ph: float, b: float) -> tuple[float, float]:
    """Left and right torso edge at height y (shoulders wider than waist)."""
    t = min(1.0, max(0.0, (y - SHOULDER_Y * ph) / ((HIP_Y - SHOULDER_Y) * ph)))
    half = _lerp(0.125, 0.102, t) * ph * b
    return cx - half, cx + half


def _draw_frontal(draw: ImageDraw.ImageDraw, who: Identity, pose: Pose, front: bool) -> None:
    cx, top, ph, b = pose.cx, pose.top, pose.height, who.build * BULK
    y = lambda f: top + f * ph  # noqa: E731 - local shorthand keeps the geometry readable
    # Screen side of the person's right hand: viewer's left when they face the camera.
    right_on_screen = -1 if front else 1
    bag_screen = who.bag_side * right_on_screen
    skin, upper, lower = who.skin_rgb, who.upper_rgb, who.lower_rgb
    head_w = 0.092 * ph
    head_box = (cx - head_w / 2, top, cx + head_w / 2, y(HEAD_H))
    lift_l = 0.02 * ph * max(0.0, math.sin(pose.phase))
    lift_r = 0.02 * ph * max(0.0, -math.sin(pose.phase))

    # Long hair seen from the front falls behind the shoulders: draw it first.
    if front and who.hair_length == "long" and who.hat != "beanie":
        draw.rectangle(
            (head_box[0] - 0.01 * ph, y(0.05), head_box[2] + 0.01 * ph, y(SHOULDER_Y + 0.07)),
            fill=who.hair_rgb,
        )

    # Legs and shoes.
    leg_x = 0.052 * ph * b
    for side, lift in ((-1, lift_l), (1, lift_r)):
        hip = (cx + side * leg_x, y(HIP_Y))
        ankle = (cx + side * leg_x * 1.05, y(ANKLE_Y) - lift)
        knee = (cx + side * leg_x * 1.02, y(KNEE_Y) - lift / 2)
        leg_colour = lower if who.lower_kind == "trousers" else skin
        _limb(draw, hip, ankle, 0.085 * ph * b, 0.05 * ph, leg_colour)
        if who.lower_kind == "shorts":
            _limb(draw, hip, knee, 0.088 * ph * b, 0.07 * ph, lower)
        sw = 0.034 * ph
        draw.ellipse(
            (ankle[0] - sw, ankle[1] - 0.01 * ph, ankle[0] + sw, ankle[1] + 0.045 * ph),
            fill=who.shoes_rgb,
        )
    # Pelvis / skirt.
    l0, r0 = _frontal_torso(cx, y(HIP_Y - 0.04), ph, b)
    if who.lower_kind == "skirt":
        flare = 0.04 * ph
        draw.polygon(
            [
                (l0, y(HIP_Y - 0.04)),
                (r0, y(HIP_Y - 0.04)),
                (r0 + flare, y(0.71)),
                (l0 - flare, y(0.71)),
            ],
            fill=lower,
        )
    else:
        draw.polygon(
            [(l0, y(HIP_Y - 0.04)), (r0, y(HIP_Y - 0.04)), (r0, y(0.57)), (l0, y(0.57))],
            fill=lower,
        )

    # Handbag hanging behind a hand is drawn with the arms below.
    # Torso (upper garment), with a shaded flank for some volume.
    ls, rs = _frontal_torso(cx, y(SHOULDER_Y), ph, b)
    lh, rh = _frontal_torso(cx, y(HIP_Y), ph, b)
    torso = [(ls, y(SHOULDER_Y)), (rs, y(SHOULDER_Y)), (rh, y(HIP_Y + 0.02)), (lh, y(HIP_Y + 0.02))]
    draw.polygon(torso, fill=upper)
    draw.polygon(
        [
            (rs - 0.035 * ph, y(SHOULDER_Y)),
            (rs, y(SHOULDER_Y)),
            (rh, y(HIP_Y + 0.02)),
            (rh - 0.03 * ph, y(HIP_Y + 0.02)),
        ],
        fill=shade(upper, 0.82),
    )
    accent = who.upper_accent_rgb
    if who.pattern == "stripes":
        yy = SHOULDER_Y + 0.04
        while yy < HIP_Y:
            a, c = _frontal_torso(cx, y(yy), ph, b)
            draw.rectangle((a, y(yy), c, y(yy + 0.022)), fill=accent)
            yy += 0.06
    elif who.pattern == "logo" and front:
        s = 0.034 * ph
        lx, ly = cx, y(SHOULDER_Y + 0.11)
        if who.logo_shape == "circle":
            draw.ellipse((lx - s, ly - s, lx + s, ly + s), fill=accent)
        elif who.logo_shape == "square":
            draw.rectangle((lx - s, ly - s, lx + s, ly + s), fill=accent)
        elif who.logo_shape == "bar":
            draw.rectangle((lx - 1.6 * s, ly - 0.6 * s, lx + 1.6 * s, ly + 0.6 * s), fill=accent)
        else:
            draw.polygon([(lx, ly - s), (lx + s, ly + s), (lx - s, ly + s)], fill=accent)
    elif who.pattern == "jacket" and front:
        half = 0.035 * ph * b
        draw.polygon(
            [
                (cx - half, y(SHOULDER_Y)),
                (cx + half, y(SHOULDER_Y)),
                (cx + half * 0.8, y(HIP_Y + 0.02)),
                (cx - half * 0.8, y(HIP_Y + 0.02)),
            ],
            fill=accent,
        )

    # Backpack body from behind; only its straps from the front.
    if who.bag == "backpack":
        if front:
            for side in (-1, 1):
                _limb(
                    draw,
                    (cx + side * 0.075 * ph * b, y(SHOULDER_Y)),
                    (cx + side * 0.07 * ph * b, y(SHOULDER_Y + 0.2)),
                    0.02 * ph,
                    0.02 * ph,
                    shade(who.bag_rgb, 0.9),
                )
        else:
            bw = 0.095 * ph * b
            draw.rounded_rectangle(
                (cx - bw, y(SHOULDER_Y + 0.03), cx + bw, y(SHOULDER_Y + 0.29)),
                radius=0.03 * ph,
                fill=who.bag_rgb,
            )
            draw.rectangle(
                (cx - bw * 0.7, y(SHOULDER_Y + 0.18), cx + bw * 0.7, y(SHOULDER_Y + 0.27)),
                fill=shade(who.bag_rgb, 1.25),
            )
    elif who.bag == "shoulder bag":
        strap_top = (cx - bag_screen * 0.08 * ph * b, y(SHOULDER_Y))
        strap_end = (cx + bag_screen * 0.1 * ph * b, y(HIP_Y - 0.03))
        _limb(draw, strap_top, strap_end, 0.016 * ph, 0.016 * ph, shade(who.bag_rgb, 0.8))

    # Arms with sleeves.
    for side in (-1, 1):
        swing = 0.015 * ph * math.sin(pose.phase) * side
        sh = (cx + side * 0.118 * ph * b, y(SHOULDER_Y + 0.02))
        wrist = (cx + side * 0.145 * ph * b, y(HIP_Y + 0.01) - abs(swing))
        elbow = ((sh[0] + wrist[0]) / 2, (sh[1] + wrist[1]) / 2)
        _limb(draw, sh, wrist, 0.05 * ph * b, 0.036 * ph, skin)
        sleeve_end = wrist if who.sleeves == "long" else elbow
        _limb(draw, sh, sleeve_end, 0.056 * ph * b, 0.044 * ph, upper)
        draw.ellipse(
            (
                wrist[0] - 0.02 * ph,
                wrist[1] - 0.01 * ph,
                wrist[0] + 0.02 * ph,
                wrist[1] + 0.03 * ph,
            ),
            fill=skin,
        )
        if who.bag == "handbag" and side == bag_screen:
            hw = 0.045 * ph
            draw.rounded_rectangle(
                (
                    wrist[0] - hw + side * 0.01 * ph,
                    wrist[1] + 0.02 * ph,
                    wrist[0] + hw + side * 0.01 * ph,
                    wrist[1] + 0.1 * ph,
                ),
                radius=0.01 * ph,
                fill=who.bag_rgb,
            )
    if who.bag == "shoulder bag":
        bx = cx + bag_screen * 0.15 * ph * b
        draw.rounded_rectangle(
            (bx - 0.045 * ph, y(HIP_Y - 0.06), bx + 0.045 * ph, y(HIP_Y + 0.05)),
            radius=0.01 * ph,
            fill=who.bag_rgb,
        )

    # Neck, head, hair, hat.
    draw.rectangle(
        (cx - 0.02 * ph, y(HEAD_H - 0.01), cx + 0.02 * ph, y(SHOULDER_Y + 0.01)), fill=skin
    )
    bald = who.hair_length == "bald"
    if front:
        if not bald:
            draw.ellipse(
                (
                    head_box[0] - 0.006 * ph,
                    head_box[1] - 0.006 * ph,
                    head_box[2] + 0.006 * ph,
                    head_box[3] - 0.02 * ph,
                ),
                fill=who.hair_rgb,
            )
        face_top = head_box[1] + (0.03 * ph if not bald else 0.0)
        draw.ellipse(
            (head_box[0] + 0.004 * ph, face_top, head_box[2] - 0.004 * ph, head_box[3]), fill=skin
        )
        eye_y = top + 0.065 * ph
        for ex in (-0.02, 0.02):
            draw.rectangle(
                (cx + ex * ph - 0.006 * ph, eye_y, cx + ex * ph + 0.006 * ph, eye_y + 0.006 * ph),
                fill=shade(skin, 0.45),
            )
    else:
        draw.ellipse(head_box, fill=skin if bald else who.hair_rgb)
        if who.hair_length in ("long", "medium") and who.hat != "beanie":
            end = SHOULDER_Y + (0.13 if who.hair_length == "long" else 0.03)
            draw.rounded_rectangle(
                (head_box[0] - 0.005 * ph, y(0.06), head_box[2] + 0.005 * ph, y(end)),
                radius=0.02 * ph,
                fill=who.hair_rgb,
            )
    _draw_hat(draw, who, head_box, ph, 0, front)


def _draw_hat(
    draw: ImageDraw.ImageDraw,
    who: Identity,
    head_box: tuple[float, float, float, float],
    ph: float,
    facing: int,
    front: bool,
) -> None:
    """Cap (brim towards the facing direction) or beanie; `facing` is 0 for frontal views."""
    if who.hat == "none":
        return
    x0, y0, x1, _ = head_box
    crown = (x0 - 0.004 * ph, y0 - 0.01 * ph, x1 + 0.004 * ph, y0 + 0.07 * ph)
    draw.chord(crown, 180, 360, fill=who.hat_rgb)
    band = y0 + 0.03 * ph
    if who.hat == "beanie":
        draw.rectangle(
            (crown[0], band - 0.002 * ph, crown[2], band + 0.018 * ph), fill=shade(who.hat_rgb, 0.8)
        )
        return
    if facing:
        brim_x = x1 if facing > 0 else x0
        draw.rectangle(
            _box(brim_x, band - 0.005 * ph, brim_x + facing * 0.05 * ph, band + 0.01 * ph),
            fill=shade(who.hat_rgb, 0.8),
        )
    elif front:
        draw.ellipse(
            (x0 - 0.01 * ph, band - 0.006 * ph, x1 + 0.01 * ph, band + 0.016 * ph),
            fill=shade(who.hat_rgb, 0.8),
        )


def _draw_side(draw: ImageDraw.ImageDraw, who: Identity, pose: Pose, s: int) -> None:
    """Walking across the image towards +x (s=1) or -x (s=-1)."""
    cx, top, ph, b = pose.cx, pose.top, pose.height, who.build * BULK
    y = lambda f: top + f * ph  # noqa: E731
    skin, upper, lower = who.skin_rgb, who.upper_rgb, who.lower_rgb
    swing = 0.38 * math.sin(pose.phase)
    # Facing +x the person's right side is towards the camera.
    bag_near = who.bag_side == s
    depth = 0.07 * ph * b
    leg_len = (ANKLE_Y - HIP_Y) * ph
    arm_len = (HIP_Y - SHOULDER_Y) * ph
    hip = (cx, y(HIP_Y))
    shoulder = (cx + s * 0.01 * ph, y(SHOULDER_Y + 0.025))

    def leg(angle: float, far: bool) -> None:
        f = 0.72 if far else 1.0
        ankle = (hip[0] + s * math.sin(angle) * leg_len, hip[1] + math.cos(angle) * leg_len)
        knee = ((hip[0] + ankle[0]) / 2, (hip[1] + ankle[1]) / 2)
        colour = lower if who.lower_kind == "trousers" else skin
        _limb(draw, hip, ankle, 0.085 * ph * b, 0.05 * ph, shade(colour, f))
        if who.lower_kind == "shorts":
            _limb(draw, hip, knee, 0.09 * ph * b, 0.07 * ph, shade(lower, f))
        toe = ankle[0] + s * 0.05 * ph
        heel = ankle[0] - s * 0.02 * ph
        draw.ellipse(
            _box(toe, ankle[1] - 0.012 * ph, heel, ankle[1] + 0.04 * ph),
            fill=shade(who.shoes_rgb, f),
        )

    def arm(angle: float, far: bool) -> None:
        f = 0.72 if far else 1.0
        wrist = (
            shoulder[0] + s * math.sin(angle) * arm_len,
            shoulder[1] + math.cos(angle) * arm_len,
        )
        elbow = ((shoulder[0] + wrist[0]) / 2, (shoulder[1] + wrist[1]) / 2)
        _limb(draw, shoulder, wrist, 0.05 * ph * b, 0.036 * ph, shade(skin, f))
        end = wrist if who.sleeves == "long" else elbow
        _limb(draw, shoulder, end, 0.058 * ph * b, 0.046 * ph, shade(upper, f))
        draw.ellipse(
            (
                wrist[0] - 0.02 * ph,
                wrist[1] - 0.01 * ph,
                wrist[0] + 0.02 * ph,
                wrist[1] + 0.03 * ph,
            ),
            fill=shade(skin, f),
        )
        if who.bag == "handbag" and far != bag_near:
            draw.rounded_rectangle(
                (
                    wrist[0] - 0.04 * ph,
                    wrist[1] + 0.02 * ph,
                    wrist[0] + 0.04 * ph,
                    wrist[1] + 0.1 * ph,
                ),
                radius=0.01 * ph,
                fill=shade(who.bag_rgb, f),
            )

    # Far side first, then the body, then the near side.
    arm(swing * 0.8, far=True)
    leg(-swing, far=True)
    if who.bag == "shoulder bag" and not bag_near:
        draw.rounded_rectangle(
            _box(cx - s * 0.03 * ph, y(HIP_Y - 0.07), cx + s * 0.06 * ph, y(HIP_Y + 0.04)),
            radius=0.01 * ph,
            fill=shade(who.bag_rgb, 0.75),
        )
    if who.hair_length == "long" and who.hat != "beanie":
        back = cx - s * 0.035 * ph
        draw.rectangle(
            _box(back, y(0.05), back - s * 0.03 * ph, y(SHOULDER_Y + 0.1)), fill=who.hair_rgb
        )
    leg(swing, far=False)
    # Pelvis / skirt.
    if who.lower_kind == "skirt":
        draw.polygon(
            [
                (cx - depth, y(HIP_Y - 0.04)),
                (cx + depth, y(HIP_Y - 0.04)),
                (cx + depth * 1.5, y(0.71)),
                (cx - depth * 1.5, y(0.71)),
            ],
            fill=lower,
        )
    else:
        draw.polygon(
            [
                (cx - depth, y(HIP_Y - 0.04)),
                (cx + depth, y(HIP_Y - 0.04)),
                (cx + depth * 0.9, y(0.58)),
                (cx - depth * 0.9, y(0.58)),
            ],
            fill=lower,
        )
    # Torso, slightly leaning into the walk.
    lean = s * 0.012 * ph
    torso = [
        (cx - depth + lean, y(SHOULDER_Y)),
        (cx + depth + lean, y(SHOULDER_Y)),
        (cx + depth * 0.95, y(HIP_Y + 0.02)),
        (cx - depth * 0.95, y(HIP_Y + 0.02)),
    ]
    draw.polygon(torso, fill=upper)
    accent = who.upper_accent_rgb
    if who.pattern == "stripes":
        yy = SHOULDER_Y + 0.04
        while yy < HIP_Y:
            draw.rectangle((cx - depth, y(yy), cx + depth, y(yy + 0.022)), fill=accent)
            yy += 0.06
    elif who.pattern == "jacket":
        edge = cx + s * depth * 0.9 + lean / 2
        draw.rectangle(
            _box(edge, y(SHOULDER_Y + 0.02), edge - s * 0.02 * ph, y(HIP_Y)), fill=accent
        )
    if who.bag == "backpack":
        back_edge = cx - s * depth + lean
        x_far = back_edge - s * 0.075 * ph
        draw.rounded_rectangle(
            _box(back_edge + s * 0.01 * ph, y(SHOULDER_Y + 0.03), x_far, y(SHOULDER_Y + 0.28)),
            radius=0.025 * ph,
            fill=who.bag_rgb,
        )
        _limb(
            draw,
            (cx + lean, y(SHOULDER_Y)),
            (cx - s * depth * 0.5, y(SHOULDER_Y + 0.2)),
            0.02 * ph,
            0.02 * ph,
            shade(who.bag_rgb, 0.9),
        )
    elif who.bag == "shoulder bag":
        _limb(
            draw,
            (cx + lean, y(SHOULDER_Y)),
            (cx + s * depth * 0.6, y(HIP_Y - 0.04)),
            0.016 * ph,
            0.016 * ph,
            shade(who.bag_rgb, 0.8),
        )
        if bag_near:
            draw.rounded_rectangle(
                _box(cx - s * 0.01 * ph, y(HIP_Y - 0.07), cx + s * 0.08 * ph, y(HIP_Y + 0.04)),
                radius=0.01 * ph,
                fill=who.bag_rgb,
            )
    arm(-swing * 0.8, far=False)
    # Neck and head in profile: face towards s, hair covering the back of the head.
    draw.rectangle(
        (cx - 0.02 * ph + lean, y(HEAD_H - 0.01), cx + 0.02 * ph + lean, y(SHOULDER_Y + 0.01)),
        fill=skin,
    )
    hx = cx + lean + s * 0.006 * ph
    head_box = (hx - 0.048 * ph, top, hx + 0.048 * ph, y(HEAD_H))
    draw.ellipse(head_box, fill=skin)
    if who.hair_length != "bald":
        # Hair covers the top and the back half of the head; the face shows towards s.
        draw.chord(head_box, 180 if s > 0 else 200, 340 if s > 0 else 360, fill=who.hair_rgb)
        draw.pieslice(head_box, 90 if s > 0 else 270, 270 if s > 0 else 450, fill=who.hair_rgb)
        face_x = hx + s * 0.014 * ph
        draw.ellipse((face_x - 0.03 * ph, y(0.04), face_x + 0.03 * ph, y(HEAD_H)), fill=skin)
    eye = hx + s * 0.03 * ph
    draw.rectangle((eye - 0.005 * ph, y(0.062), eye + 0.005 * ph, y(0.068)), fill=shade(skin, 0.45))
    _draw_hat(draw, who, head_box, ph, s, False)
