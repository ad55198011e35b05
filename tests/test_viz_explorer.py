"""The explorer page in a real browser: headless Chromium opens it from file://, we drive its controls.

Chromium is driven over the Chrome DevTools Protocol on ``--remote-debugging-pipe`` (NUL-separated
JSON on file descriptors 3 and 4) with the standard library only. Chromium comes from Debian
packages: when ``/usr/bin/chromium`` is absent, the set-up installs it with apt-get where it can
(root, registry reachable) and skips with the reason where it cannot.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import run_command
from PIL import Image
from test_viz_attention import with_faces

from sync_tva.inference import load_model
from sync_tva.records import Utterance
from sync_tva.viz import explorer
from sync_tva.viz.explorer import extract_in_batches, page_data

TINY_RUN = [
    "train.epochs=1",
    "data.demo.n_dialogues=16",
    "model.hidden=16",
    "model.heads=2",
    "train.num_threads=1",
]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
    "--remote-debugging-pipe",
]
PNG = b"\x89PNG\r\n\x1a\n"


def find_or_install_chromium() -> str:
    """Path of the Chromium binary; install Debian's package if absent, else skip saying why."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and apt-get cannot run here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium", "chromium-driver"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:  # stale package lists: refresh once and retry
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env, timeout=900)
        done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    found = shutil.which("chromium")
    if done.returncode != 0 or not found:
        pytest.skip(f"chromium could not be installed with apt-get: {done.stderr.strip()[-300:]}")
    return found


def test_chromium_set_up_skips_with_the_reason_where_it_cannot_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed and apt-get cannot run here"):
        find_or_install_chromium()


class Browser:
    """One headless Chromium page driven over the DevTools pipe: evaluate, click, screenshot."""

    def __init__(self, binary: str, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def as_fds_3_and_4() -> None:  # Chromium reads commands on fd 3 and answers on fd 4
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=as_fds_3_and_4,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.exceptions: list[str] = []
        page = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.send("Runtime.enable", session=True)
        self.send("Page.enable", session=True)

    def send(self, method: str, session: bool = False, timeout: float = 60.0, **params: Any) -> dict:
        """Send one command and wait for its answer, collecting page exceptions meanwhile."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(json.dumps(reply["params"]["exceptionDetails"])[:800])
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (exceptions raise)."""
        result = self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 60.0) -> None:
        """Navigate and wait until the expression ``ready`` is true."""
        self.send("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"document.readyState === 'complete' && Boolean({ready})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready: {ready}")
            time.sleep(0.1)

    def choose(self, select_id: str, value: str) -> None:
        """Pick an option of a <select> as a user would: set it and fire ``change``."""
        self.evaluate(
            f"(() => {{ const s = document.getElementById({json.dumps(select_id)}); s.value = {json.dumps(value)};"
            " s.dispatchEvent(new Event('change', {bubbles: true})); return s.value; })()"
        )

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", session=True, format="png")["data"])

    def close(self) -> None:
        os.close(self._to_browser)  # Chromium exits when its command pipe closes
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._from_browser)


def _stub(needs_dialogue: bool) -> SimpleNamespace:
    """A stand-in trained run whose model only says how it is batched."""
    return SimpleNamespace(model=SimpleNamespace(dialogue_builder=lambda: object() if needs_dialogue else None))


@pytest.mark.parametrize(
    ("needs_dialogue", "expected"),
    [
        (True, [["d1_0", "d1_1", "d1_2"], ["d2_0", "d2_1", "d2_2", "d2_3"], ["d3_0"], ["d4_0", "d4_1"]]),
        (False, [["d1_0", "d1_1"], ["d1_2", "d2_0"], ["d2_1", "d2_2"], ["d2_3", "d3_0"], ["d4_0", "d4_1"]]),
    ],
)
def test_page_batches_are_evaluation_batches(monkeypatch, needs_dialogue, expected):
    seen: list[list[str]] = []
    monkeypatch.setattr(explorer, "extract_attention", lambda trained, batch: seen.append([u.uid for u in batch]) or list(batch))
    sizes = {"d1": 3, "d2": 4, "d3": 1, "d4": 2}
    utts = [Utterance(uid=f"{d}_{i}", dialogue=d, speaker="A", label=0, features={}) for d, n in sizes.items() for i in range(n)]
    assert extract_in_batches(_stub(needs_dialogue), utts, batch_size=2) == utts
    assert seen == expected  # a dialogue model's dialogues whole (one too long alone), otherwise full batches in order


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_command(tmp_path_factory.mktemp("explorer") / "run", *TINY_RUN)


@pytest.fixture(scope="module")
def command(run_dir) -> subprocess.CompletedProcess:
    """``python -m sync_tva.viz`` drawing two utterances and writing the page."""
    done = subprocess.run(
        [sys.executable, "-m", "sync_tva.viz", "--run", str(run_dir), "--n", "2", "--html", str(run_dir / "explorer.html"), "--html-max", "40"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def page(run_dir, command) -> Path:
    path = run_dir / "explorer.html"
    assert str(path) in command.stdout.split()
    return path


@pytest.fixture(scope="module")
def tables(run_dir, page) -> dict:
    """The run's attention tables of the page's utterances, extracted in the page's batches."""
    trained = load_model(run_dir)
    uids = [u["uid"] for u in page_data(page)["utterances"]]
    pool = {u.uid: u for u in trained.load_split("test")}
    uas = extract_in_batches(trained, [pool[uid] for uid in uids], trained.cfg.train.batch_size)
    return {ua.uid: ua for ua in uas}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = Browser(find_or_install_chromium(), tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.close()


def shown_cells(browser: Browser) -> dict[tuple[str, str], float]:
    """``{(row node, column node): value}`` of the heatmap cells the page shows now (masked ones left out)."""
    cells = browser.evaluate(
        "[...document.querySelectorAll('#canvas rect.cell[data-value]')]"
        ".map(c => [c.dataset.row, c.dataset.col, Number(c.dataset.value)])"
    )
    return {(row, col): value for row, col, value in cells}


def table_cells(ua, relation: str, layer: int, head: int | None) -> dict[tuple[str, str], float]:
    """The same cells from the run's attention table (one head, or the mean over heads)."""
    gat = ua.gat[(ua.gat["relation"] == relation) & (ua.gat["layer"] == layer)]
    if head is None:
        gat = gat.groupby(["src_type", "src", "dst_type", "dst"], as_index=False)["attention"].mean()
    else:
        gat = gat[gat["head"] == head]
    return {(f"{r.dst_type}:{r.dst}", f"{r.src_type}:{r.src}"): float(r.attention) for r in gat.itertuples()}


@pytest.mark.slow  # trains a tiny run and draws (about a minute on a busy 2-core machine)
def test_command_writes_heatmaps_and_says_which_picks_are_right(run_dir, command, tables):
    printed = [Path(line) for line in command.stdout.split()]
    verdicts = [line.split("  ") for line in command.stderr.splitlines() if "  predicted " in line]
    assert len(verdicts) == 2
    for uid, true, predicted, mark, p in verdicts:
        ua = tables[uid]
        assert (true, predicted) == (f"true {ua.labels[ua.true]}", f"predicted {ua.labels[ua.predicted]}")
        assert mark == ("right" if ua.correct else "wrong") and p == f"p={ua.probs[ua.predicted]:.2f}"
        heatmap = run_dir / "attention" / f"{uid}_heatmap.png"
        assert heatmap in printed and heatmap.read_bytes()[:8] == PNG
        # The demo's relations are all full (dense): --view auto draws them as heatmaps, no graph panels.
        assert not (run_dir / "attention" / f"{uid}_relations.png").exists()
        assert {run_dir / "attention" / f"{uid}.{ext}" for ext in ("png", "svg", "graphml")} <= set(printed)


@pytest.mark.slow  # trains a tiny run and draws (about a minute on a busy 2-core machine)
def test_page_data_are_the_runs_attention_tables(run_dir, page, tables):
    data = page_data(page)
    test = load_model(run_dir).load_split("test")
    assert [u["uid"] for u in data["utterances"]] == [u.uid for u in test]  # the whole split fits in --html-max 40
    record = data["utterances"][1]
    ua = tables[record["uid"]]
    assert record["uid"] == ua.uid and record["predicted"] == ua.predicted
    gat = record["gat"]
    for layer, head in [(0, 0), (1, 1)]:
        rows = ua.gat[(ua.gat["layer"] == layer) & (ua.gat["head"] == head)]
        by_edge = {(r.relation, r.edge_id): r.attention for r in rows.itertuples()}
        page_values = {(rel, e): w for rel, e, w in zip(gat["relation"], gat["edge_id"], gat["attention"][layer][head])}
        assert page_values.keys() == by_edge.keys()
        # Written as the shortest decimal of each float32: read back, they are the very same float32.
        assert all(np.float32(page_values[k]) == np.float32(v) for k, v in by_edge.items())
    text = ua.msde[(ua.msde["modality"] == "text") & (ua.msde["head"] == 1)].sort_values(["query", "key"])
    assert np.array_equal(np.float32(record["msde"]["text"][1]), text["attention"].to_numpy(np.float32))


@pytest.mark.slow  # trains a tiny run and draws (about a minute on a busy 2-core machine)
def test_explorer_in_headless_chromium(page, tables, browser, tmp_path):
    browser.open(page.resolve().as_uri(), "document.querySelector('#canvas svg')")
    shot = browser.screenshot()
    (tmp_path / "explorer.png").write_bytes(shot)
    assert shot[:8] == PNG
    pixels = plt.imread(tmp_path / "explorer.png")[..., :3]
    assert pixels.shape[1] == 1400 and pixels.shape[0] > 800 and pixels.std() > 0.05  # the window, drawn: not one flat colour
    assert (pixels.reshape(-1, 3).std(axis=1) > 0.1).mean() > 0.005  # and in colour (heatmap cells, bars)
    uids = browser.evaluate("[...document.querySelectorAll('#utterance option')].map(o => o.value)")
    data = page_data(page)
    assert uids == [u["uid"] for u in data["utterances"]]

    # Another utterance and another head through the page's controls; relation and layer too.
    other = tables[uids[3]]
    relation = data["relations"][-1]["name"]
    browser.choose("utterance", other.uid)
    browser.choose("relation", f"gat:{relation}")
    browser.choose("layer", "0")
    browser.choose("head", "1")
    browser.evaluate("document.getElementById('view-heatmap').click()")
    canvas = browser.evaluate("Object.assign({}, document.getElementById('canvas').dataset)")
    assert canvas == {"view": "heatmap", "uid": other.uid, "block": f"gat:{relation}", "layer": "0", "head": "1"}
    ua = other
    expected = table_cells(ua, relation, layer=0, head=1)
    shown = shown_cells(browser)
    assert shown.keys() == expected.keys()
    assert all(np.float32(shown[k]) == np.float32(v) for k, v in expected.items())

    # Mean of heads, last layer: the page averages as the table does.
    browser.choose("head", "mean")
    browser.choose("layer", "1")
    mean = table_cells(ua, relation, layer=1, head=None)
    shown = shown_cells(browser)
    assert shown.keys() == mean.keys()
    assert max(abs(shown[k] - v) for k, v in mean.items()) < 1e-6

    # Hovering a destination node lists its incoming attention, strongest first.
    destination = next(iter(mean))[0]
    browser.evaluate(
        f"document.querySelector('#canvas text[data-node=\"{destination}\"]').dispatchEvent(new MouseEvent('mouseenter'))"
    )
    incoming = browser.evaluate(
        "[...document.querySelectorAll('#incoming tr')].map(r => [r.dataset.src, Number(r.querySelector('.value').dataset.value)])"
    )
    want = sorted(((col, v) for (row, col), v in mean.items() if row == destination), key=lambda x: -x[1])
    assert [src for src, _ in incoming] == [src for src, _ in want]
    assert np.allclose([v for _, v in incoming], [v for _, v in want], atol=1e-6)

    # The prediction panel shows the model's class probabilities.
    probs = browser.evaluate("[...document.querySelectorAll('#prediction .prob')].map(p => Number(p.dataset.prob))")
    assert np.allclose(probs, ua.probs, atol=1e-6)
    assert browser.evaluate("document.getElementById('prediction').dataset.correct") == ("right" if ua.correct else "wrong")

    # Graph view draws the chosen relation's edges; filters narrow the list.
    browser.evaluate("document.getElementById('view-graph').click()")
    assert browser.evaluate("document.querySelectorAll('#canvas path[data-value]').length") > 0
    browser.choose("filter-correct", "wrong")
    wrong = browser.evaluate("[...document.querySelectorAll('#utterance option')].map(o => o.value)")
    assert wrong == [u["uid"] for u in data["utterances"] if u["true"] != u["predicted"]]
    assert browser.exceptions == []


@pytest.fixture(scope="module")
def context_page(tmp_path_factory) -> Path:
    """The page of a tiny run of the dialogue-context model (its test split)."""
    out = tmp_path_factory.mktemp("explorer-context")
    config = Path(__file__).parents[1] / "configs" / "demo_context.yaml"
    run = [sys.executable, "-m", "sync_tva.run", "--config", str(config), "--out", str(out / "run"), *TINY_RUN]
    done = subprocess.run(run, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = load_model(out / "run")
    return explorer.write_explorer_page(trained, trained.load_split("test"), out / "page.html", title="context")


@pytest.mark.slow  # trains a tiny context run
def test_conversation_panel_draws_context_attention_and_opens_a_turn(context_page, browser):
    data = page_data(context_page)
    utterances = data["utterances"]
    turn = {u["uid"]: i for i, u in enumerate(utterances)}
    for u in utterances:
        links = u["context"]
        # Past turns only (demo_context: past 2, future 0), of the same dialogue; per relation a distribution.
        assert all(utterances[turn[link["source"]]]["dialogue"] == u["dialogue"] for link in links)
        assert all(turn[link["source"]] <= turn[u["uid"]] for link in links)
        for relation in {link["relation"] for link in links}:
            assert sum(link["attention"] for link in links if link["relation"] == relation) == pytest.approx(1.0, abs=1e-5)
    target = next(u for u in utterances if any(link["source"] != u["uid"] for link in u["context"]))
    browser.open(context_page.resolve().as_uri(), "document.querySelector('#canvas svg')")
    browser.choose("utterance", target["uid"])
    assert browser.evaluate("document.getElementById('conversation').hidden") is False
    arcs = browser.evaluate(
        "[...document.querySelectorAll('#conversation path.context')].map(p => [p.dataset.source, p.dataset.relation, Number(p.dataset.value)])"
    )
    want = [[link["source"], link["relation"], link["attention"]] for link in target["context"] if link["source"] != target["uid"]]
    assert sorted(arcs) == sorted(want)
    other = next(u["uid"] for u in utterances if u["dialogue"] == target["dialogue"] and u["uid"] != target["uid"])
    browser.evaluate(f"document.querySelector('#conversation .turn[data-uid=\"{other}\"]').dispatchEvent(new MouseEvent('click'))")
    assert browser.evaluate("document.getElementById('canvas').dataset.uid") == other  # its heterograph opens
    assert browser.exceptions == []


@pytest.fixture(scope="module")
def faces_page(run_dir, tmp_path_factory) -> tuple[Path, dict[str, Utterance]]:
    """A page of the run's first test dialogue, every other utterance with thumbnails and boxes (as from video)."""
    trained = load_model(run_dir)
    test = trained.load_split("test")
    dialogue = [u for u in test if u.dialogue == test[0].dialogue]
    utts = [with_faces(u, seed=i) if i % 2 == 0 else u for i, u in enumerate(dialogue)]
    assert any(not u.thumbs for u in utts)  # the dialogue has both kinds
    path = explorer.write_explorer_page(trained, utts, tmp_path_factory.mktemp("faces") / "faces.html", title="faces")
    return path, {u.uid: u for u in utts}


def decode_png(uri: str) -> np.ndarray:
    """The pixels of a ``data:image/png;base64,...`` URI."""
    head, payload = uri.split(",", 1)
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))


def box_text(box: list[float]) -> str:
    x0, y0, x1, y1 = box
    return f"face {x0:.2f},{y0:.2f}-{x1:.2f},{y1:.2f}"


@pytest.mark.slow  # trains a tiny run
def test_page_data_hold_each_visual_nodes_thumbnail_and_box(faces_page, page):
    path, utts = faces_page
    plain_keys = set(page_data(page)["utterances"][0])  # a record of a run without video
    for record in page_data(path)["utterances"]:
        utt = utts[record["uid"]]
        if not utt.thumbs:
            assert set(record) == plain_keys  # no new keys without thumbnails
            continue
        assert set(record) == plain_keys | {"thumbs", "boxes"}
        thumbs = utt.thumbs["visual"]
        assert len(record["thumbs"]) == len(thumbs) == record["nodes"]["modality"].count("visual")
        for uri, thumb in zip(record["thumbs"], thumbs):
            np.testing.assert_array_equal(decode_png(uri), thumb)  # lossless: the very pixels
        assert np.array_equal(np.float32(record["boxes"]), utt.boxes["visual"])


@pytest.mark.slow  # trains a tiny run
def test_explorer_shows_thumbnails_beside_visual_nodes(faces_page, browser):
    path, utts = faces_page
    records = {r["uid"]: r for r in page_data(path)["utterances"]}
    faced = next(uid for uid, u in utts.items() if u.thumbs)
    plain = next(uid for uid, u in utts.items() if not u.thumbs)
    browser.open(path.resolve().as_uri(), "document.querySelector('#canvas svg')")
    browser.choose("utterance", faced)
    browser.evaluate("document.getElementById('view-graph').click()")
    shown = browser.evaluate("[...document.querySelectorAll('#canvas image.thumb')].map(i => [i.dataset.node, i.getAttribute('href')])")
    assert shown == [[f"visual:{i}", uri] for i, uri in enumerate(records[faced]["thumbs"])]

    # Hovering a visual node shows its thumbnail, decoded by the browser, and its box as text.
    browser.evaluate("document.querySelector('#canvas circle[data-node=\"visual:1\"]').dispatchEvent(new MouseEvent('mouseenter'))")
    read = "(() => { const i = document.querySelector('#node-info img.thumb'); return [i.getAttribute('src'), i.complete ? i.naturalWidth : 0]; })()"
    deadline = time.monotonic() + 10
    while browser.evaluate(read)[1] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert browser.evaluate(read) == [records[faced]["thumbs"][1], 48]
    assert browser.evaluate("document.querySelector('#node-info .box').textContent") == box_text(records[faced]["boxes"][1])

    # An utterance without thumbnails: none in the graph or the hover panel.
    browser.choose("utterance", plain)
    assert browser.evaluate("document.querySelectorAll('#canvas image, #node-info img').length") == 0
    assert browser.evaluate("document.getElementById('node-info').dataset.node") == "visual:1"  # the panel was redrawn
    assert browser.exceptions == []
