"""Sample grids in real pixels: Kitty's graphics protocol or Sixel where the terminal speaks one, else half-blocks.

The mode is chosen once, before the app takes the terminal over (the answers to
the terminal queries arrive on stdin, which Textual reads once it runs):
``GANBENCH_IMAGES=kitty|sixel|halfblock`` forces one; otherwise textual-image
asks the terminal as it always does (Sixel first, since WezTerm and Konsole
answer Kitty's query without drawing its Unicode placeholders). No terminal on
stdout, ``NO_COLOR`` or a terminal that answers neither: half-blocks.

``PixelCanvas`` draws a PIL image into its whole content area. Everything it
sends goes through the Textual driver inside the frames, in order with the
rest of the screen. Kitty: the image is sent once per change under one id per
canvas and shown through Unicode placeholder cells; a new grid replaces the old
one under the same id, so the cells do not change and nothing flickers, and the
image is deleted when the canvas goes away. Sixel: the pixels are redrawn over
the old ones in the same frame.
"""

from __future__ import annotations

import os
import random
import re
import sys
from base64 import standard_b64encode
from io import BytesIO
from itertools import count
from typing import Mapping

from rich.color import Color
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.dom import NoScreen
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from workbench.base.errors import ConfigError

MODES = ("kitty", "sixel", "halfblock")
ENV_VAR = "GANBENCH_IMAGES"
DEFAULT_CELL = (10, 20)  # pixels per cell when the terminal does not say (textual-image's VT340 guess)
APC, ST = "\x1b_G", "\x1b\\"
CHUNK = 4096  # the protocol's largest payload per escape sequence
# The placeholder cells' foreground colour names the image: a 24-bit id in a truecolor terminal, else an 8-bit
# one (16..255: Textual turns the 16 ANSI colours into its theme's). Random so that two programs in one terminal
# are unlikely to collide.
_kitty_ids = count(random.randrange(1 << 16, (1 << 24) - (1 << 16)))
_kitty_small_ids = (16 + n % 240 for n in count(random.randrange(240)))
_NOT_SENT = object()


def forced_mode(environ: Mapping[str, str] = os.environ) -> str | None:
    """The mode named by ``GANBENCH_IMAGES``, or None when it is unset."""
    value = environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    if value not in MODES:
        raise ConfigError(f"{ENV_VAR} must be kitty, sixel or halfblock; got {value!r}.")
    return value


def detect_mode() -> str:
    """What this terminal displays, asked the way textual-image asks (it queries the terminal on import)."""
    if os.environ.get("NO_COLOR"):
        return "halfblock"
    streams = (sys.__stdout__, sys.__stdin__)
    if not all(stream is not None and stream.isatty() for stream in streams):
        return "halfblock"
    if os.environ.get("TMUX"):
        # tmux shows the Kitty query as the pane's title and never answers it: ask only for Sixel (tmux 3.4+
        # says yes when the outer terminal has it); Kitty through tmux's passthrough is GANBENCH_IMAGES=kitty.
        return "sixel" if _answers_sixel() else "halfblock"
    try:
        from textual_image import renderable
    except Exception:  # a terminal that answers the queries oddly must not keep the workbench from opening
        return "halfblock"
    if renderable.Image is renderable.SixelImage:
        return "sixel"
    if renderable.Image is renderable.TGPImage:
        return "kitty"
    return "halfblock"


def _answers_sixel() -> bool:
    """Whether the terminal lists Sixel (4) in its primary device attributes, textual-image's own test."""
    try:
        from textual_image._terminal import capture_terminal_response

        with capture_terminal_response(start_marker="\x1b[?", end_marker="c", timeout=0.1) as response:
            sys.__stdout__.write("\x1b[c")
            sys.__stdout__.flush()
        return "4" in response.sequence[len("\x1b[?"):-len("c")].split(";")
    except Exception:  # no answer in time, or an odd one
        return False


def image_mode(detect: bool = False, environ: Mapping[str, str] = os.environ) -> str:
    """The forced mode, else (with ``detect``) the terminal's, else half-blocks."""
    return forced_mode(environ) or (detect_mode() if detect else "halfblock")


def cell_pixels() -> tuple[int, int]:
    """Width and height of a character cell in pixels, from the terminal when it tells (ioctl, then CSI 16 t)."""
    if not (sys.__stdout__ is not None and sys.__stdout__.isatty()):
        return DEFAULT_CELL
    try:
        from textual_image._terminal import get_cell_size

        width, height = get_cell_size()
    except Exception:
        return DEFAULT_CELL
    return (width, height) if width > 0 and height > 0 else DEFAULT_CELL


def fit(image, width: int, height: int):
    """``image`` resized to fit ``width`` x ``height`` pixels keeping its aspect ratio: averaged when shrunk,
    nearest-neighbour when enlarged so that a 28-pixel tile stays crisp."""
    from PIL import Image

    w, h = image.size
    scale = min(width / w, height / h)
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return image.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST)


_COLOUR = re.compile(r"#(\d+);2;\d+;\d+;\d+")
_RASTER = re.compile(r'"\d+;\d+;\d+;\d+')


def palette_first(sixel: str) -> str:
    """``sixel`` with every colour register defined before the first pixel. xterm draws the pixels that follow
    a definition in the middle of the data in the register's old colour, a stripe six pixels high."""
    definitions = "".join(dict.fromkeys(match.group() for match in _COLOUR.finditer(sixel)))
    body = _COLOUR.sub(lambda match: f"#{match.group(1)}", sixel)
    raster = _RASTER.search(body)
    return body[:raster.end()] + definitions + body[raster.end():] if raster else sixel


def kitty_command(payload: str = "", **keys) -> str:
    """One graphics-protocol escape sequence; wrapped for tmux's passthrough when inside tmux."""
    body = ",".join(f"{k}={v}" for k, v in keys.items())
    sequence = f"{APC}{body}{';' + payload if payload else ''}{ST}"
    if os.environ.get("TMUX"):
        sequence = "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + ST
    return sequence


def kitty_transmission(image, image_id: int, columns: int, rows: int) -> str:
    """Send ``image`` as PNG under ``image_id`` (replacing what the id held) and place it virtually over
    ``columns`` x ``rows`` placeholder cells."""
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    data = standard_b64encode(buffer.getvalue()).decode("ascii")
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [""]
    parts = [kitty_command(chunks[0], a="t", f=100, i=image_id, q=2, m=int(len(chunks) > 1))]
    parts += [kitty_command(chunk, m=int(n < len(chunks) - 1), q=2) for n, chunk in enumerate(chunks[1:], 1)]
    parts.append(kitty_command(a="p", U=1, i=image_id, c=columns, r=rows, q=2))
    return "".join(parts)


def kitty_placeholders(row: int, columns: int) -> str:
    """Row ``row`` of placeholder cells: U+10EEEE with the row and column as diacritics."""
    from textual_image.renderable.tgp import _NUMBER_TO_DIACRITIC as MARKS, _PLACEHOLDER

    cell = chr(_PLACEHOLDER)
    return "".join(f"{cell}{chr(MARKS[row])}{chr(MARKS[column])}" for column in range(columns))


class PixelCanvas(Widget, can_focus=False, inherit_css=False):
    """Draws ``picture`` (an RGB PIL image; ``key`` says when it changed) in ``mode``: "kitty" or "sixel"."""

    DEFAULT_CSS = "PixelCanvas { width: 100%; height: 100%; }"

    def __init__(self, mode: str, cell: tuple[int, int] = DEFAULT_CELL, id: str | None = None):
        super().__init__(id=id)
        self.mode, self.cell = mode, cell
        self.picture, self.key = None, None
        self.image_id = 0  # Kitty: chosen on mount, when the colour system is known
        self._sent = _NOT_SENT  # what the terminal holds under image_id: (key, columns, rows)
        self._sixels: tuple[tuple, str] | None = None

    def show(self, picture, key) -> None:
        """Draw ``picture``; ``key`` identifies its content, so an unchanged picture is not sent again."""
        if key != self.key:
            self.picture, self.key = picture, key
            self.refresh()

    def layout(self) -> tuple[int, int, int]:
        """The picture's size in cells (columns, rows) and the columns left of it, centring it."""
        width, height = self.content_size
        cw, ch = self.cell
        w, h = self.picture.size
        scale = min(width * cw / w, height * ch / h)
        columns = max(1, min(width, round(w * scale / cw)))
        rows = max(1, min(height, round(h * scale / ch)))
        return columns, rows, (width - columns) // 2

    def render_lines(self, crop: Region) -> list[Strip]:
        try:
            # A screen below a modal one is drawn tinted, which would change the placeholders' colour (the id).
            hidden = self.picture is None or not self.screen.is_active or not self.content_size.area
        except NoScreen:
            hidden = True
        if hidden:
            return [Strip.blank(crop.width)] * crop.height
        if self.mode == "kitty":
            return self._kitty_lines(crop)
        return self._sixel_lines(crop)

    # -- Kitty ------------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.mode == "kitty":
            self.image_id = next(_kitty_ids if self.app.console.color_system == "truecolor" else _kitty_small_ids)

    def id_style(self) -> Style:
        """The placeholders' style: their foreground colour is the image id."""
        if self.image_id < 256:
            return Style(color=Color.from_ansi(self.image_id))
        return Style(color=Color.from_rgb((self.image_id >> 16) & 255, (self.image_id >> 8) & 255,
                                          self.image_id & 255))

    def _kitty_lines(self, crop: Region) -> list[Strip]:
        columns, rows, indent = self.layout()
        first = []
        if self._sent != (self.key, columns, rows) and crop.x == 0:  # a crop cut on the left would lose it
            cw, ch = self.cell
            sequence = kitty_transmission(fit(self.picture, columns * cw, rows * ch), self.image_id, columns, rows)
            first = [Segment(sequence, control=((ControlType.CURSOR_FORWARD, 0),))]
            self._sent = (self.key, columns, rows)
        style = self.id_style()
        width = self.content_size.width
        lines = []
        for y in range(crop.y, crop.bottom):
            segments = first if y == crop.y else []
            if y < rows:
                segments = segments + [Segment(" " * indent), Segment(kitty_placeholders(y, columns), style)]
            lines.append(Strip(segments).adjust_cell_length(width).crop(crop.x, crop.right))
        return lines

    def on_unmount(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Free the terminal's copy of the image (Kitty keeps it until told, even after the app exits)."""
        driver = getattr(self.app, "_driver", None)  # Textual's own way to the terminal, in order with the frames
        if self.mode == "kitty" and self._sent is not _NOT_SENT and driver is not None:
            driver.write(kitty_command(a="d", d="I", i=self.image_id, q=2))
            self._sent = _NOT_SENT

    # -- Sixel ------------------------------------------------------------------------------------------
    def _sixel_lines(self, crop: Region) -> list[Strip]:
        from textual_image._sixel import image_to_sixels

        cache_key = (self.key, crop, self.content_size, self.cell)
        if self._sixels is None or self._sixels[0] != cache_key:
            self._sixels = (cache_key, palette_first(image_to_sixels(self._sixel_picture(crop))))
        # Sixel paints from the cursor down: sent with the crop's last line, after the lines above are written,
        # and the cursor put back where Textual expects it.
        screen_region = self.screen.find_widget(self).region
        x, y = screen_region.x + crop.x, screen_region.y + crop.y
        sixel = [Segment(Control.move_to(x, y).segment.text),
                 Segment(self._sixels[1], control=((ControlType.CURSOR_FORWARD, 0),)),
                 Segment(Control.move_to(x + crop.width, y + crop.height - 1).segment.text)]
        # The lines above say they fill the width while writing nothing; an empty strip would be padded with
        # spaces, which wipe the old pixels before the new ones arrive (a flicker in xterm).
        return [Strip([], cell_length=crop.width)] * (crop.height - 1) + [Strip(sixel, cell_length=crop.width)]

    def _sixel_picture(self, crop: Region):
        """The canvas in pixels (the picture centred on the background colour), cut to ``crop``."""
        from PIL import Image

        cw, ch = self.cell
        width, height = self.content_size
        columns, rows, indent = self.layout()
        background = self.background_colors[1]
        canvas = Image.new("RGB", (width * cw, height * ch), (background.r, background.g, background.b))
        picture = fit(self.picture, columns * cw, rows * ch)
        canvas.paste(picture, (indent * cw + (columns * cw - picture.width) // 2, 0))
        return canvas.crop((crop.x * cw, crop.y * ch, crop.right * cw, crop.bottom * ch))
