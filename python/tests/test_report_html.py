"""report.html: a self-contained page drawn from report.json, checked in a real browser.

Headless Chromium (Debian's `chromium`, which `make test` installs) renders the page to a
PNG; the test checks that the charts are drawn (the bars' colours cover real areas of the
screenshot, the page is not blank) and that the browser reported no error. Without
Chromium or Pillow those checks skip, saying so; the page's structure is checked anyway.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import cli
import pytest

BAR_COLOURS = {"funnel": (0x4C, 0x78, 0xA8), "response": (0xF5, 0x85, 0x18), "types": (0x54, 0xA2, 0x4B),
               "clusters": (0xE4, 0x57, 0x56), "packing": (0x72, 0xB7, 0xB2)}


@pytest.fixture(scope="module")
def demo(tokenmill_bin, repo, tmp_path_factory):
    return cli.build(tokenmill_bin, repo / "Specs" / "demo.json", tmp_path_factory.mktemp("report") / "demo")


def test_the_page_is_self_contained_and_says_what_report_json_says(demo):
    html = (demo / "report.html").read_text(encoding="utf-8")
    report = json.loads((demo / "report.json").read_text(encoding="utf-8"))
    assert html.startswith("<!DOCTYPE html>")
    # Nothing from the network, nothing that runs.
    for pattern in (r"<script", r"https?://", r"\bsrc\s*=", r"url\(", r"@import", r"<link", r"<iframe"):
        assert not re.search(pattern, html, re.I), f"report.html holds {pattern}"
    # Every source's funnel, with its counts as report.json gives them.
    for name, counts in report["sources"].items():
        assert f"<h3>{name}</h3>" in html
        read = counts["read"] + counts["rejected"]
        assert f"<title>read: {read:,}</title>" in html
        assert f"<title>kept: {counts['kept']:,}</title>" in html
        buckets = sum(counts[k] for k in ("rejected", "filtered", "exact_dup", "near_dup", "decontaminated", "over_take",
                                           "subsampled", "overflow_dropped", "truncated", "kept"))
        assert buckets == read
    # The analysis the charts draw: histograms count each kept conversation once.
    analysis = report["analysis"]["sources"]
    for name, a in analysis.items():
        conversations = sum(a["prompt_tokens_log2"])
        assert conversations == sum(a["response_tokens_log2"])
        assert conversations + sum(a["text_tokens_log2"]) == report["sources"][name]["kept"]
        assert sum(t["records"] for t in a["instruction_types"]) == conversations
        for t in a["instruction_types"]:
            assert sum(n for _, n in t["objects"]) in (0, t["records"])
    assert analysis["peps"]["text_tokens_log2"] and not analysis["peps"]["instruction_types"]
    verbs = {t["verb"] for t in analysis["alpaca_en"]["instruction_types"]}
    assert {"generate", "write", "explain", "(question)"} <= verbs
    assert [t["verb"] for t in analysis["alpaca_zh"]["instruction_types"]][0] == "(non-English)"
    clusters = report["analysis"]["near_dup_cluster_sizes"]
    removed = sum(c["near_dup"] for c in report["sources"].values())
    assert sum((size - 1) * n for size, n in clusters) == removed


def test_it_renders_in_a_real_browser(demo, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (make test installs Debian's chromium): the browser check is skipped")
    image = pytest.importorskip("PIL.Image", reason="Pillow is not installed: the screenshot cannot be read")
    png = tmp_path / "report.png"
    run = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
         "--window-size=1000,4000", f"--screenshot={png}", (demo / "report.html").as_uri()],
        capture_output=True, timeout=120, text=True)
    assert run.returncode == 0 and png.is_file(), run.stderr[-2000:]
    # The page itself logged nothing (the browser's own D-Bus and GPU chatter aside).
    page_errors = [l for l in run.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l or "report.html" in l and "ERROR" in l]
    assert not page_errors, page_errors
    pixels = image.open(png).convert("RGB")
    width, height = pixels.size
    counts: dict[tuple[int, int, int], int] = {}
    for colour, n in ((c, n) for n, c in pixels.getcolors(maxcolors=1 << 20)):
        counts[colour] = n
    white = counts.get((255, 255, 255), 0)
    assert white < 0.97 * width * height, "the page is blank"
    for chart, colour in BAR_COLOURS.items():
        assert counts.get(colour, 0) > 500, f"no {chart} bars were drawn ({counts.get(colour, 0)} pixels of {colour})"
