"""A PNG sample grid drawn in the terminal: in real pixels where it can, else coloured half-blocks.

The app's ``images`` mode (``widgets/pixels.py``) says how: "kitty" and "sixel"
draw the pixels through a ``PixelCanvas``; "halfblock" uses ``▀``, which takes
the upper pixel as its foreground colour and the lower one as its background
and works in every colour terminal. Without colour (``NO_COLOR``) each cell
shows the brightness of its two pixels with a shading ramp instead.
"""

from __future__ import annotations

from pathlib import Path

from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget

from workbench.tui.widgets.pixels import DEFAULT_CELL, PixelCanvas

RAMP = " .:-=+*#%@"
MIN_CELL_PIXELS = 10  # below this a 28-pixel image stops being recognisable
GRID_PADDING = 2  # torchvision's make_grid default, used by save_grid


class HalfBlocks:
    """A rich renderable of an RGB ``PIL.Image`` fitted into ``width`` x ``height`` cells."""

    def __init__(self, image, width: int, height: int, colour: bool = True):
        self.image, self.width, self.height, self.colour = image, max(width, 1), max(height, 1), colour

    def fitted(self):
        """The image resized to fit (keeping its aspect ratio) in width x 2*height pixels."""
        from PIL import Image

        w, h = self.image.size
        scale = min(self.width / w, 2 * self.height / h)
        size = (max(1, round(w * scale)), max(2, round(h * scale)))
        return self.image.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        image = self.fitted()
        w, h = image.size
        pixels = image.load()
        indent = " " * ((self.width - w) // 2)
        for y in range(0, h - h % 2 if h > 1 else h, 2):
            if indent:
                yield Segment(indent)
            for x in range(w):
                top, bottom = pixels[x, y], pixels[x, min(y + 1, h - 1)]
                if self.colour:
                    yield Segment("▀", Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom)))
                else:
                    level = (sum(top) + sum(bottom)) / (6 * 255)
                    yield Segment(RAMP[min(int(level * len(RAMP)), len(RAMP) - 1)])
            yield Segment.line()


def cells_to_show(grid_side: int, tile: int, room: int) -> int:
    """How many grid cells per side fit in ``room`` pixels with each tile at least MIN_CELL_PIXELS wide."""
    step = tile + GRID_PADDING
    cells = max(1, (grid_side - GRID_PADDING) // step)
    while cells > 1 and room / (cells * step + GRID_PADDING) * tile < MIN_CELL_PIXELS:
        cells -= 1
    return cells


class SampleImage(Widget, can_focus=False):
    """Shows the PNG at ``path``; with ``tile`` (the image side in the grid) set, zooms into the top-left tiles
    that fit at a readable size, unless ``whole`` is True. In pixels, a cell holds a few dozen pixels rather
    than two, so the whole of a 64-image grid fits even at 80x24."""

    DEFAULT_CSS = """
    SampleImage { height: 1fr; min-height: 4; }
    """

    path: reactive[Path | None] = reactive(None)
    tile: reactive[int] = reactive(0)
    whole: reactive[bool] = reactive(False)

    def __init__(self, path: Path | None = None, *, tile: int = 0, id: str | None = None,
                 classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._cache: tuple[tuple, object] | None = None
        self.set_reactive(SampleImage.path, path)
        self.set_reactive(SampleImage.tile, tile)

    @property
    def mode(self) -> str:
        """How this widget draws: the app's ``images`` mode ("kitty", "sixel" or "halfblock")."""
        return getattr(self.app, "images", "halfblock")

    def compose(self) -> ComposeResult:
        if self.mode != "halfblock":
            yield PixelCanvas(self.mode, getattr(self.app, "cell_pixels", DEFAULT_CELL))

    def _load(self):
        """The decoded image, re-read only when the file changes."""
        from PIL import Image

        path = self.path
        try:
            stat = path.stat()
            key = (str(path), stat.st_mtime_ns, stat.st_size)
            if self._cache is None or self._cache[0] != key:
                with Image.open(path) as source:
                    self._cache = (key, source.convert("RGB"))
            return self._cache[1]
        except (OSError, ValueError):
            return None

    def _shown(self, image, room: int):
        """The part of ``image`` to show when ``room`` pixels fit across the smaller side, and its bounds."""
        box = (0, 0, *image.size)
        if self.tile and not self.whole:
            cells = cells_to_show(min(image.size), self.tile, room)
            side = cells * (self.tile + GRID_PADDING) + GRID_PADDING
            box = (0, 0, min(side, image.size[0]), min(side, image.size[1]))
        return (image if box == (0, 0, *image.size) else image.crop(box)), box

    def _canvas(self) -> PixelCanvas | None:
        canvases = self.query(PixelCanvas)  # none before compose has run, and none in half-blocks
        return canvases.first() if canvases else None

    def render(self):
        image = None if self.path is None else self._load()
        canvas = self._canvas()
        if canvas is not None:
            canvas.display = image is not None  # else the canvas would hide the message
        if self.path is None:
            return "No sample grid yet."
        if image is None:
            return f"Cannot read {self.path.name}."
        width, height = self.content_size.width, self.content_size.height
        if self.mode != "halfblock":
            return self._render_pixels(canvas, image, width, height) if canvas is not None else ""
        image, _ = self._shown(image, min(width, 2 * height))
        return HalfBlocks(image, width, height, colour=not self.app.no_color)

    def _render_pixels(self, canvas: PixelCanvas, image, width: int, height: int):
        """Hand the picture to the canvas (drawn over this widget's content area); nothing of its own to draw."""
        cw, ch = canvas.cell
        picture, box = self._shown(image, min(width * cw, height * ch))
        canvas.show(picture, (self._cache[0], box))
        return ""
