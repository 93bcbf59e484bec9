"""Sample grids in real pixels (workbench/tui/widgets/pixels.py): the mode chosen, and what reaches the terminal.

The Kitty and Sixel tests run the app under Pilot with a driver that records
what Textual writes to the terminal, so they read the escape sequences a
terminal would get, frame by frame.
"""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image
from textual import constants
from textual.drivers.headless_driver import HeadlessDriver
from textual.widgets import DataTable

from conftest import run_cli
from test_tui_helpers import T0, event_at, grid_png, wait_for, write_recorded_run
from workbench.base.errors import ConfigError
from workbench.rundir.events import EventLog
from workbench.tui.app import make_app
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.pixels import PixelCanvas, image_mode, palette_first
from workbench.tui.widgets.sample_image import SampleImage

TRANSMIT = re.compile(r"\x1b_Ga=t,f=100,i=(\d+),q=2,m=\d;")
PLACE = re.compile(r"\x1b_Ga=p,U=1,i=(\d+),c=(\d+),r=(\d+),q=2\x1b\\")
DELETE = re.compile(r"\x1b_Ga=d,d=I,i=(\d+),q=2\x1b\\")
SIXEL = re.compile(r'\x1bP[0-9;]*q"1;1;(\d+);(\d+)')


class RecordingDriver(HeadlessDriver):
    """A headless driver that is not headless to the app: the app writes its frames, kept in ``written``."""

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        self.written.append(data)

    def flush(self) -> None:
        pass

    def start_application_mode(self) -> None:
        self.written: list[str] = []
        super().start_application_mode()


def output(app) -> str:
    return "".join(app._driver.written)


def sixels(text: str) -> list[str]:
    return re.findall(r"\x1bP[0-9;]*q.*?\x1b\\", text, re.S)


async def open_run(pilot, app) -> SampleImage:
    table = app.screen.query_one(DataTable)
    await wait_for(pilot, lambda: table.row_count == 1, "the row")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.snapshot.step == 400, "the run")
    await pilot.pause(0.3)
    return app.screen.query_one("#run-sample", SampleImage)


def add_sample(run, fashion_images, step: int):
    """A new grid for the run, as the engine announces one."""
    path = grid_png(run.samples / f"step-{step:08d}.png", fashion_images, offset=step)
    log = EventLog(run.events)
    log.append(event_at(T0 + step, "sample", step=step, epoch=2, path=str(path), file=run.relative(path)))
    log.close()
    return path


@pytest.fixture
def recorded(tmp_path, fashion_images):
    return write_recorded_run(tmp_path / "runs", "pixels", fashion_images, steps=400, total_steps=600,
                              status="stopped")


def test_the_mode_is_forced_by_the_environment_and_refused_when_misspelt():
    assert image_mode(environ={}) == "halfblock"
    assert image_mode(environ={"GANBENCH_IMAGES": " Kitty "}) == "kitty"
    assert image_mode(detect=True, environ={"GANBENCH_IMAGES": "sixel"}) == "sixel"
    assert image_mode(detect=True, environ={}) == "halfblock"  # pytest's stdout is no terminal
    with pytest.raises(ConfigError, match="GANBENCH_IMAGES must be kitty, sixel or halfblock; got 'png'."):
        image_mode(environ={"GANBENCH_IMAGES": "png"})


def test_a_misspelt_mode_ends_the_workbench_with_one_sentence(tmp_path):
    done = run_cli(cwd=tmp_path, env={"GANBENCH_IMAGES": "png"}, timeout=120)
    assert done.returncode == 2 and not (tmp_path / "runs").exists()
    assert done.stderr.strip() == "ganbench: error: GANBENCH_IMAGES must be kitty, sixel or halfblock; got 'png'."


def palette_defined_first(sixel: str) -> bool:
    """No colour register is defined after the first pixel data (``~`` to ``?`` or a ``!`` repeat)."""
    first_pixel = re.search(r'[?-~!]', sixel[sixel.index('"') + 1:]).start() + sixel.index('"') + 1
    return all(m.start() < first_pixel for m in re.finditer(r"#\d+;2;", sixel))


def test_sixel_colours_are_all_defined_before_the_first_pixel():
    from textual_image._sixel import image_to_sixels

    picture = Image.new("RGB", (40, 24), (17, 17, 17))
    picture.paste((200, 200, 200), (10, 8, 30, 20))  # a colour first used in the second band of six rows
    sixel = image_to_sixels(picture)
    fixed = palette_first(sixel)
    assert palette_defined_first(fixed) and fixed.count(";2;") == sixel.count(";2;") == 2
    definition = re.compile(r"#(\d+);2;\d+;\d+;\d+")
    palette = "".join(m.group() for m in definition.finditer(fixed))
    assert fixed.replace(palette, "", 1) == definition.sub(r"#\1", sixel)  # the same pixels in the same colours


@pytest.mark.parametrize("mode", ["kitty", "sixel", "halfblock"])
async def test_the_forced_mode_picks_the_renderer_and_pixels_show_the_whole_grid(mode, recorded, plugins,
                                                                                  monkeypatch):
    monkeypatch.setenv("GANBENCH_IMAGES", mode)
    app = make_app(recorded.path.parent, plugins=plugins)
    assert app.images == mode
    async with app.run_test(size=(80, 24)) as pilot:
        image = await open_run(pilot, app)
        canvases = image.query(PixelCanvas)
        grid = Image.open(image.path).size
        if mode == "halfblock":
            assert not canvases and "▀" in "".join(image.render_line(y).text for y in range(1, 5))
            return
        canvas = canvases.first()
        assert canvas.mode == mode and canvas.display
        assert canvas.picture.size == grid == (242, 242)  # all 64 images at 80x24, not the half-blocks' 4
        columns, rows, _ = canvas.layout()
        assert rows == canvas.content_size.height and 0 < columns <= canvas.content_size.width
        await pilot.press("z")  # whole is already shown: zoom still shows it all
        await pilot.pause(0.2)
        assert canvas.picture.size == grid


async def test_kitty_sends_the_grid_once_and_replaces_it_by_id_on_update(recorded, plugins, fashion_images,
                                                                         monkeypatch):
    monkeypatch.setattr(constants, "COLOR_SYSTEM", "truecolor")  # kitty's own ($TEXTUAL_COLOR_SYSTEM): 24-bit ids
    app = make_app(recorded.path.parent, plugins=plugins, images="kitty")
    app.driver_class = RecordingDriver
    async with app.run_test(headless=False, size=(80, 24)) as pilot:
        image = await open_run(pilot, app)
        canvas = image.query_one(PixelCanvas)
        first = output(app)
        assert [int(i) for i in TRANSMIT.findall(first)] == [canvas.image_id]
        ((placed, columns, rows),) = PLACE.findall(first)
        assert int(placed) == canvas.image_id and (int(columns), int(rows)) == canvas.layout()[:2]
        # The cells are Unicode placeholders whose foreground colour is the image id.
        red, green, blue = (canvas.image_id >> 16) & 255, (canvas.image_id >> 8) & 255, canvas.image_id & 255
        assert f"38;2;{red};{green};{blue}m\U0010EEEE\u0305\u0305" in first
        assert first.count("\U0010EEEE") == int(columns) * int(rows)

        app._driver.written.clear()
        new = add_sample(recorded, fashion_images, 500)
        await wait_for(pilot, lambda: image.path == new and TRANSMIT.search(output(app)), "the new grid")
        await pilot.pause(0.5)
        update = output(app)
        # The same id again: the terminal replaces the image in place; nothing deleted, nothing added.
        assert [int(i) for i in TRANSMIT.findall(update)] == [canvas.image_id] and not DELETE.search(update)
        png = "".join(re.findall(r"\x1b_G[^;\x1b]*;([A-Za-z0-9+/=]+)\x1b\\", update))
        sent = Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB")
        assert sent.tobytes() == canvas.picture.resize(sent.size, Image.Resampling.NEAREST).tobytes()

        app._driver.written.clear()
        await pilot.press("g")  # a dialog on top tints the run screen: its placeholders would name another image
        await wait_for(pilot, lambda: app.screen is not image.screen and "\x1b[" in output(app), "the dialog")
        await pilot.pause(0.3)
        app._driver.written.clear()  # a frame of the run screen queued before the dialog (a loaded CPU) is gone:
        app.screen.refresh()  # judge a frame drawn with the dialog on top
        await wait_for(pilot, lambda: "\x1b[" in output(app), "a frame under the dialog")
        assert "\U0010EEEE" not in output(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: "\U0010EEEE" in output(app), "the grid again")
        assert not TRANSMIT.search(output(app))  # the terminal still holds it

        app._driver.written.clear()
        await pilot.press("escape")  # leaving the run frees the terminal's copy
        await wait_for(pilot, lambda: DELETE.search(output(app)), "the image deleted")
        assert [int(i) for i in DELETE.findall(output(app))] == [canvas.image_id]


async def test_kitty_in_a_256_colour_terminal_names_the_image_with_an_8_bit_colour(recorded, plugins, monkeypatch):
    monkeypatch.setattr(constants, "COLOR_SYSTEM", "256")  # a 24-bit colour would be rounded to another id
    app = make_app(recorded.path.parent, plugins=plugins, images="kitty")
    app.driver_class = RecordingDriver
    async with app.run_test(headless=False, size=(80, 24)) as pilot:
        canvas = (await open_run(pilot, app)).query_one(PixelCanvas)
        assert 16 <= canvas.image_id < 256 and TRANSMIT.findall(output(app)) == [str(canvas.image_id)]
        assert f"\x1b[38;5;{canvas.image_id}m\U0010EEEE\u0305\u0305" in output(app)


async def test_sixel_draws_the_grid_over_the_old_one_in_place(recorded, plugins, fashion_images):
    app = make_app(recorded.path.parent, plugins=plugins, images="sixel", cell=(8, 16))
    app.driver_class = RecordingDriver
    async with app.run_test(headless=False, size=(80, 24)) as pilot:
        image = await open_run(pilot, app)
        canvas = image.query_one(PixelCanvas)
        region = canvas.region
        where = f"\x1b[{region.y + 1};{region.x + 1}H\x1bP"  # the cursor at the canvas's corner, then the sixels
        first = output(app)
        assert [tuple(map(int, size)) for size in SIXEL.findall(first)] == [(region.width * 8, region.height * 16)]
        assert where in first and all(palette_defined_first(sixel) for sixel in sixels(first))
        # Nothing is written in the canvas's cells but the sixels: spaces there would wipe the old pixels first.
        blank = re.compile(rf"\x1b\[\d+;{region.x + 1}H(\x1b\[[0-9;]*m)? ")
        assert f"\x1b[{region.y + 2};{region.x + 1}H" in first and not blank.search(first)

        app._driver.written.clear()
        add_sample(recorded, fashion_images, 500)
        await wait_for(pilot, lambda: SIXEL.search(output(app)), "the new grid")
        await pilot.pause(0.5)
        update = output(app)
        # Each sixel image goes to the canvas's corner, whole: the new pixels overwrite the old ones within a frame
        # (a repaint of the screen sends them again, as Sixel has no ids to refer to).
        assert set(SIXEL.findall(update)) == {(str(region.width * 8), str(region.height * 16))}
        assert update.count(where) == len(SIXEL.findall(update)) and "\x1b[2J" not in update
        assert not blank.search(update)
        assert sixels(update)[-1] != sixels(first)[-1]


async def test_the_sweep_contact_sheet_sends_each_grid_under_its_own_id(tmp_path, plugins, fashion_images,
                                                                         monkeypatch):
    from test_tui_sweep import _open_sweep, write_recorded_sweep

    monkeypatch.chdir(tmp_path)
    write_recorded_sweep(tmp_path / "runs", fashion_images)
    app = make_app("runs", plugins=plugins, reattach=False, images="kitty")
    app.driver_class = RecordingDriver
    async with app.run_test(headless=False, size=(80, 24)) as pilot:
        await _open_sweep(pilot)
        assert not TRANSMIT.search(output(app))  # the samples tab is not shown yet: nothing sent
        await pilot.press("3")
        await wait_for(pilot, lambda: len(TRANSMIT.findall(output(app))) == 2, "two grids sent")
        canvases = app.screen.query(PixelCanvas)
        ids = sorted(canvas.image_id for canvas in canvases)
        assert sorted(map(int, TRANSMIT.findall(output(app)))) == ids and len(set(ids)) == 2
        assert all(canvas.picture.size == (242, 242) for canvas in canvases)  # whole grids on the sheet


def test_inside_tmux_kitty_commands_go_through_its_passthrough(monkeypatch):
    from workbench.tui.widgets.pixels import kitty_command

    monkeypatch.delenv("TMUX", raising=False)
    assert kitty_command(a="d", d="I", i=5, q=2) == "\x1b_Ga=d,d=I,i=5,q=2\x1b\\"
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    # tmux (allow-passthrough on) hands the inner sequence, its escapes undoubled, to the outer terminal.
    assert kitty_command(a="d", d="I", i=5, q=2) == "\x1bPtmux;\x1b\x1b_Ga=d,d=I,i=5,q=2\x1b\x1b\\\x1b\\"
