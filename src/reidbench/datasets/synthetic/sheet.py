"""A contact sheet of a synthetic set: a few identities (rows) across cameras (columns).

Made from the files on disk, so it shows exactly what was written (after camera
effects and JPEG), labelled with each person's attributes from the identities file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from reidbench.datasets.synthetic.build import FOLDERS, IDENTITIES_FILE, MARKER
from reidbench.datasets.synthetic.check import list_split
from reidbench.errors import UserError
from reidbench.files import atomic_path

_LABEL_W = 300
_HEADER_H = 64


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def contact_sheet(root: Path, out_png: Path, *, rows: int = 8, zoom: int = 2) -> Path:
    """Write a PNG of `rows` test identities, one image per camera, and return its path.

    Identities seen by the most cameras come first (ties: lowest pid), so the sheet
    shows viewpoint and camera changes rather than empty cells.
    """
    root = Path(root)
    marker_path = root / MARKER
    if not marker_path.is_file():
        raise UserError(f"{root} has no {MARKER}; make the dataset with `reidbench synth` first")
    marker = json.loads(marker_path.read_text(encoding="utf-8"))
    cameras = int(marker["parameters"]["cameras"])
    people_path = root / IDENTITIES_FILE
    people = (
        json.loads(people_path.read_text(encoding="utf-8"))["people"]
        if people_path.is_file()
        else {}
    )
    by_pid: dict[int, dict[int, str]] = defaultdict(dict)
    for split in ("query", "gallery"):
        for path, pid, camid in list_split(root / FOLDERS[split]):
            if pid > 0:
                by_pid[pid].setdefault(camid, path)
    chosen = sorted(by_pid, key=lambda p: (-len(by_pid[p]), p))[:rows]
    if not chosen:
        raise UserError(f"{root} has no test identities to show")

    cell_w, cell_h = 64 * zoom, 128 * zoom
    sheet = Image.new(
        "RGB", (_LABEL_W + cameras * (cell_w + 4), _HEADER_H + len(chosen) * (cell_h + 4)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    title, small = _font(20), _font(15)
    draw.text(
        (8, 6),
        f"reidbench synthetic pedestrians, seed {marker['seed']}: procedural renderings, "
        "not real people",
        fill="black",
        font=title,
    )
    for c in range(cameras):
        draw.text(
            (_LABEL_W + c * (cell_w + 4) + 8, 36), f"camera {c + 1}", fill="black", font=small
        )
    for r, pid in enumerate(chosen):
        y = _HEADER_H + r * (cell_h + 4)
        who = people.get(f"identity:{pid}", {})
        text = f"person {pid:04d}\n" + _wrap(str(who.get("description", "")), 34)
        draw.multiline_text((8, y + 8), text, fill="black", font=small, spacing=4)
        for camid, path in by_pid[pid].items():
            with Image.open(path) as img:
                tile = img.convert("RGB").resize((cell_w, cell_h), Image.Resampling.NEAREST)
            sheet.paste(tile, (_LABEL_W + camid * (cell_w + 4), y))
    with atomic_path(out_png) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return Path(out_png)


def _wrap(text: str, width: int) -> str:
    lines: list[str] = []
    for part in text.split(", "):
        if lines and len(lines[-1]) + len(part) + 2 <= width:
            lines[-1] += ", " + part
        else:
            lines.append(part)
    return "\n".join(lines)
