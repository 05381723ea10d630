"""HTML pages: home, upload, draw, camera. Their scripts call the JSON API."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def home() -> str:
    """What the app does, and links to the three ways of giving it a digit."""
    return render_template("home.html", page="home")


@bp.get("/upload")
def upload() -> str:
    """Pick or drop an image file."""
    return render_template("upload.html", page="upload")


@bp.get("/draw")
def draw() -> str:
    """Draw a digit on a canvas; predictions follow the pen."""
    return render_template("draw.html", page="draw")


@bp.get("/camera")
def camera() -> str:
    """Photograph a digit with the device's camera."""
    return render_template("camera.html", page="camera")
