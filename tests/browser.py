"""Headless Chromium for tests that look at a page as a person would: offline, from disk.

Debian's `chromium` package is installed when it is missing and the tests run as root (as on a
fresh machine or in CI); otherwise the calling test is skipped, saying why. The network is off
for the browser: every host name resolves to nothing, the proxy is a closed port, and when
the kernel allows it the browser runs in an empty network namespace (`unshare --net`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

CHROMIUM = "chromium"
_CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught")  # page console lines in Chromium's stderr log
_OFFLINE_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@dataclasses.dataclass
class Rendered:
    screenshot: pathlib.Path
    console: list[str]  # the page's console lines (errors, uncaught exceptions)
    log: str  # Chromium's whole stderr


@functools.cache
def chromium() -> str:
    """The chromium executable, installed with apt-get when missing and running as root;
    skips the calling test otherwise. Test workers (pytest-xdist) take turns to install: the
    first installs while the others wait on a lock file, then find it installed."""
    if path := shutil.which(CHROMIUM):
        return path
    if os.geteuid() != 0:
        pytest.skip(f"`{CHROMIUM}` is not installed and installing it needs root")
    with open(pathlib.Path(tempfile.gettempdir()) / "flight-delay-chromium.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if path := shutil.which(CHROMIUM):  # another worker installed it meanwhile
            return path
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", CHROMIUM]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
            done = subprocess.run(install, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"apt-get install {CHROMIUM} failed:\n{done.stderr[-2000:]}")
    return shutil.which(CHROMIUM) or pytest.fail(f"{CHROMIUM} installed but not on PATH")


@functools.cache
def _namespace() -> tuple[str, ...]:
    """`unshare --net` when this process may create a network namespace, else nothing."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return (unshare, "--net")
    return ()


def render(page: pathlib.Path, screenshot: pathlib.Path, size=(1280, 2400)) -> Rendered:
    """Opens `page` from disk in headless Chromium with the network off and screenshots it."""
    command = [
        *_namespace(),
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        *_OFFLINE_FLAGS,
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={screenshot}",
        f"--window-size={size[0]},{size[1]}",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert screenshot.exists(), f"no screenshot (exit {done.returncode}):\n{done.stderr[-3000:]}"
    console = [line for line in done.stderr.splitlines() if _CONSOLE.search(line)]
    return Rendered(screenshot, console, done.stderr)


def colours(screenshot: pathlib.Path) -> int:
    """How many distinct colours the screenshot holds: 1 for a blank page, thousands for
    text with anti-aliasing and plots."""
    from PIL import Image

    with Image.open(screenshot) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 24))


@dataclasses.dataclass
class Page:
    sections: list[str]  # ids of the <section> elements, in order
    images: list[str]  # src of every <img>
    urls: list[str]  # every src and href
    scripts: int  # <script> elements
    links: int  # <link> elements (stylesheets, fonts, icons)
    styles: str  # the text of the <style> elements

    def external(self) -> list[str]:
        """URLs that leave the page: anything but inline data and in-page anchors, plus
        url() and @import in the inline style."""
        found = [u for u in self.urls if not u.startswith(("data:", "#"))]
        return found + re.findall(r"url\([^)]*\)|@import[^;]*", self.styles)


def parse_page(html: str) -> Page:
    """The facts of an HTML page a self-containment test checks, by html.parser."""
    from html.parser import HTMLParser

    page = Page([], [], [], 0, 0, "")

    class Parser(HTMLParser):
        in_style = False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "section":
                page.sections.append(attrs.get("id", ""))
            if tag == "img":
                page.images.append(attrs.get("src", ""))
            page.scripts += tag == "script"
            page.links += tag == "link"
            self.in_style = tag == "style"
            page.urls.extend(attrs[k] or "" for k in ("src", "href") if k in attrs)

        def handle_endtag(self, tag):
            self.in_style = False

        def handle_data(self, data):
            if self.in_style:
                page.styles += data

    Parser().feed(html)
    return page
