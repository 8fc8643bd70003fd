"""Procedural renderer of one pedestrian image (Pillow + numpy).

The figure is drawn from simple shapes in a person-relative unit ``u`` (the figure's height in
pixels), so height and build change its proportions the same way at every image size:

* head and hair (style: short cap, long hair falling to the shoulders, ponytail, bun, bald),
* a torso trapezoid (wider shoulders for the ``man`` marker, wider hips for ``woman``),
* arms and legs that swing with the walking phase, shoes, the top (sleeve length and cut by type;
  a coat reaches the thighs), the bottom (trousers, shorts, skirt, long skirt),
* the bag (backpack behind a shoulder with straps, handbag at the hand, shoulder bag with a strap).

Camera effects follow: the figure is drawn on a canvas larger than the output, rotated by a few
degrees and cropped (so the crop offset and rotation never show empty corners), then flipped,
blurred, lit and given sensor noise. Everything is a pure function of the three attribute records,
so a seed reproduces the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from caption_gen.synth.attributes import (
    BUILDS,
    HAIR_COLORS,
    HEIGHTS,
    PALETTE,
    SKIN_TONES,
    Camera,
    Identity,
    Outfit,
)

RGB = tuple[int, int, int]


def _shade(color: RGB, factor: float) -> RGB:
    return tuple(int(max(0, min(255, c * factor))) for c in color)  # type: ignore[return-value]


def _background(width: int, height: int, camera: Camera) -> Image.Image:
    a, b = camera.background_colors
    if camera.background == "gradient":
        t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        arr = (1 - t) * np.array(a, np.float32) + t * np.array(b, np.float32)
        return Image.fromarray(np.broadcast_to(arr, (height, width, 3)).astype(np.uint8))
    img = Image.new("RGB", (width, height), a)
    draw = ImageDraw.Draw(img)
    if camera.background == "street":
        horizon = int(height * 0.62)
        draw.rectangle([0, horizon, width, height], fill=b)
        step = max(width // 4, 8)
        for x in range(step // 3, width, step):  # windows / shop fronts on the wall
            draw.rectangle([x, int(height * 0.12), x + step // 2, int(height * 0.4)], fill=_shade(a, 0.7))
    elif camera.background == "stripes":
        stripe = max(width // 7, 4)
        for i, x in enumerate(range(0, width, stripe)):
            if i % 2:
                draw.rectangle([x, 0, x + stripe - 1, height], fill=b)
    return img


def _draw_person(draw: ImageDraw.ImageDraw, identity: Identity, outfit: Outfit, cx: float, feet: float,
                 u: float, phase: float) -> None:
    skin = SKIN_TONES[identity.skin]
    hair = HAIR_COLORS.get(identity.hair_color, (0, 0, 0))
    top = PALETTE[outfit.top_color]
    bottom = PALETTE[outfit.bottom_color]
    shoes = PALETTE[outfit.shoes_color]
    bag = PALETTE[outfit.bag_color] if outfit.bag_color else None
    build = BUILDS[identity.build]
    man = identity.gender == "man"

    top_y = feet - u
    shoulder_w = (0.27 if man else 0.22) * u * build
    hip_w = (0.20 if man else 0.24) * u * build
    y_sh, y_hip = top_y + 0.16 * u, top_y + 0.50 * u
    head_r, head_cy = 0.066 * u, top_y + 0.075 * u
    head_rx = head_r * 0.8
    leg_w = hip_w * 0.42
    swing = 0.05 * u * phase

    # long hair falls behind the shoulders; the backpack hangs behind the torso
    if identity.hair_style == "long":
        draw.rectangle([cx - head_rx * 1.15, head_cy, cx + head_rx * 1.15, y_sh + 0.08 * u], fill=hair)
    if outfit.bag == "backpack":
        draw.rounded_rectangle([cx + shoulder_w * 0.25, y_sh + 0.02 * u, cx + shoulder_w * 0.5 + 0.08 * u,
                                y_hip - 0.04 * u], radius=max(1, int(0.02 * u)), fill=bag)

    # legs (skin first, then what covers them), shoes
    legs = []
    for side, sw in ((-1, swing), (1, -swing)):
        hip_x = cx + side * (hip_w / 2 - leg_w / 2)
        foot_x = hip_x + sw
        legs.append((hip_x, foot_x))
        draw.polygon([(hip_x - leg_w / 2, y_hip), (hip_x + leg_w / 2, y_hip),
                      (foot_x + leg_w * 0.4, feet - 0.03 * u), (foot_x - leg_w * 0.4, feet - 0.03 * u)], fill=skin)
    if outfit.bottom_type in ("trousers", "shorts"):
        end = feet - 0.035 * u if outfit.bottom_type == "trousers" else top_y + 0.68 * u
        for hip_x, foot_x in legs:
            t = (end - y_hip) / (feet - 0.03 * u - y_hip)
            ex = hip_x + (foot_x - hip_x) * t
            draw.polygon([(hip_x - leg_w / 2 - 1, y_hip), (hip_x + leg_w / 2 + 1, y_hip),
                          (ex + leg_w * 0.45 + 1, end), (ex - leg_w * 0.45 - 1, end)], fill=bottom)
        draw.rectangle([cx - hip_w / 2, y_hip - 0.01 * u, cx + hip_w / 2, y_hip + 0.05 * u], fill=bottom)
    for _, foot_x in legs:
        draw.ellipse([foot_x - leg_w * 0.55, feet - 0.045 * u, foot_x + leg_w * 0.75, feet], fill=shoes)
    if outfit.bottom_type in ("skirt", "long skirt"):
        end = top_y + (0.70 if outfit.bottom_type == "skirt" else 0.88) * u
        flare = hip_w * (0.75 if outfit.bottom_type == "skirt" else 0.9)
        draw.polygon([(cx - hip_w / 2, y_hip - 0.01 * u), (cx + hip_w / 2, y_hip - 0.01 * u),
                      (cx + flare, end), (cx - flare, end)], fill=bottom)

    # torso and top
    torso_end = y_hip + (0.2 * u if outfit.top_type == "coat" else 0.01 * u)
    torso_bottom_w = hip_w * (1.25 if outfit.top_type == "coat" else 1.0)
    draw.polygon([(cx - shoulder_w / 2, y_sh), (cx + shoulder_w / 2, y_sh),
                  (cx + torso_bottom_w / 2, torso_end), (cx - torso_bottom_w / 2, torso_end)], fill=top)
    if outfit.top_type in ("jacket", "coat"):
        draw.line([(cx, y_sh + 0.02 * u), (cx, torso_end)], fill=_shade(top, 0.55), width=max(1, int(0.012 * u)))
        draw.polygon([(cx - 0.05 * u, y_sh), (cx, y_sh + 0.06 * u), (cx + 0.05 * u, y_sh)], fill=_shade(top, 0.75))

    # arms: sleeve colour down to the elbow (t-shirt), the wrist (shirt, jacket, coat) or none (vest)
    sleeve_to = {"t-shirt": 0.34, "long-sleeved shirt": 0.56, "jacket": 0.56, "coat": 0.56, "vest": 0.16}
    arm_w = 0.055 * u * build
    hands = []
    for side, sw in ((-1, -swing * 0.8), (1, swing * 0.8)):
        sx = cx + side * (shoulder_w / 2 + arm_w * 0.35)
        hx, hy = sx + side * 0.02 * u + sw, top_y + 0.56 * u
        hands.append((hx, hy))
        draw.line([(sx, y_sh + arm_w / 2), (hx, hy)], fill=skin, width=max(1, int(arm_w)))
        frac = (top_y + sleeve_to[outfit.top_type] * u - y_sh) / (hy - y_sh)
        if frac > 0:
            ex, ey = sx + (hx - sx) * frac, y_sh + (hy - y_sh) * frac
            draw.line([(sx, y_sh + arm_w / 2), (ex, ey)], fill=top, width=max(1, int(arm_w * 1.15)))

    # neck, head, hair
    draw.rectangle([cx - 0.025 * u, head_cy + head_r * 0.7, cx + 0.025 * u, y_sh + 0.01 * u], fill=skin)
    draw.ellipse([cx - head_rx, head_cy - head_r, cx + head_rx, head_cy + head_r], fill=skin)
    if identity.hair_style != "bald":
        draw.pieslice([cx - head_rx * 1.12, head_cy - head_r * 1.15, cx + head_rx * 1.12, head_cy + head_r * 0.7],
                      180, 360, fill=hair)
        if identity.hair_style == "bun":
            r = head_r * 0.45
            draw.ellipse([cx - r, head_cy - head_r * 1.45 - r * 0.6, cx + r, head_cy - head_r * 1.45 + r * 1.2], fill=hair)
        elif identity.hair_style == "ponytail":
            draw.polygon([(cx + head_rx * 0.7, head_cy - head_r * 0.4), (cx + head_rx * 1.5, head_cy + head_r * 0.2),
                          (cx + head_rx * 1.25, head_cy + head_r * 1.8), (cx + head_rx * 0.9, head_cy + head_r * 0.4)],
                         fill=hair)

    # carried bags and straps
    if outfit.bag == "backpack":
        for side in (-1, 1):
            x = cx + side * shoulder_w * 0.28
            draw.line([(x, y_sh), (x, y_sh + 0.18 * u)], fill=_shade(bag, 0.8), width=max(1, int(0.015 * u)))
    elif outfit.bag == "handbag":
        hx, hy = hands[1]
        draw.rectangle([hx - 0.045 * u, hy + 0.01 * u, hx + 0.045 * u, hy + 0.09 * u], fill=bag)
    elif outfit.bag == "shoulder bag":
        draw.line([(cx - shoulder_w * 0.35, y_sh), (cx + hip_w * 0.55, y_hip)], fill=_shade(bag, 0.8),
                  width=max(1, int(0.015 * u)))
        draw.rectangle([cx + hip_w * 0.45, y_hip - 0.05 * u, cx + hip_w * 0.45 + 0.1 * u, y_hip + 0.05 * u], fill=bag)


def render_person(identity: Identity, outfit: Outfit, camera: Camera, size: tuple[int, int] = (256, 128),
                  rng: np.random.Generator | None = None) -> Image.Image:
    """Render one RGB image of ``identity`` wearing ``outfit`` under ``camera``.

    ``size`` is (height, width) as in ReID crops (256×128 by default). ``rng`` draws the sensor noise;
    pass a seeded generator for reproducible pixels (``None`` → no noise).
    """
    height, width = size
    pad = int(0.08 * height)
    canvas_w, canvas_h = width + 2 * pad, height + 2 * pad
    img = _background(canvas_w, canvas_h, camera)
    draw = ImageDraw.Draw(img)
    u = camera.scale * height * HEIGHTS[identity.height]
    cx = canvas_w / 2 + camera.offset[0] * width
    feet = pad + height / 2 + camera.scale * height / 2 + camera.offset[1] * height
    _draw_person(draw, identity, outfit, cx, feet, u, camera.walking_phase)
    if abs(camera.rotation) > 0.01:
        img = img.rotate(camera.rotation, resample=Image.Resampling.NEAREST)
    img = img.crop((pad, pad, pad + width, pad + height))
    if camera.flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if camera.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(camera.blur))
    arr = np.asarray(img, dtype=np.float32)
    arr *= np.float32(camera.brightness)
    if rng is not None and camera.noise > 0:
        noise = rng.standard_normal(size=arr.shape, dtype=np.float32)
        noise *= np.float32(camera.noise)
        arr += noise
    np.clip(arr, 0, 255, out=arr)
    return Image.fromarray(arr.astype(np.uint8))
