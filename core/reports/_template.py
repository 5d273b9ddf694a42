"""The document every report shares: fonts, styles, header and footer, safe text, tables, charts as images.

Every piece of text that comes from a user or from the store goes through :func:`esc` (or :func:`para`, which
calls it), because reportlab's ``Paragraph`` reads XML-like markup: an unescaped ``<img src=...>`` in a card field
would embed a file from the server, ``<a href=...>`` would become a link and ``R&D`` would turn into ``R&D;``.
Table cells are Paragraphs built the same way. Markup appears only in the literal templates of this package.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    KeepInFrame,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from core.errors import InvalidInput

# Debian's fonts-dejavu-core: one family that covers the accented letters of every European language (and Greek
# and Cyrillic). Embedded in each PDF, so it reads the same on every machine.
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts/dejavu"))
FONT_FILES = {"Steward": "DejaVuSans.ttf", "Steward-Bold": "DejaVuSans-Bold.ttf",
              "Steward-Italic": "DejaVuSans-Oblique.ttf", "Steward-BoldItalic": "DejaVuSans-BoldOblique.ttf",
              "StewardMono": "DejaVuSansMono.ttf"}

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_X = 1.8 * cm
MARGIN_TOP = 2.3 * cm
MARGIN_BOTTOM = 2.4 * cm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN_X
CHART_SCALE = 1.5  # pixels per chart pixel: about 150 dpi at the width charts are printed
MAX_CELL = 1200  # characters of one table cell; a longer text could not fit on a page inside a table row

INK = colors.HexColor("#1d2733")
MUTED = colors.HexColor("#5b6673")
ACCENT = colors.HexColor("#1f4e79")
RULE = colors.HexColor("#c5ced8")
HEADER_FILL = colors.HexColor("#e6ecf2")
ZEBRA = colors.HexColor("#f6f8fa")
BOX_FILL = colors.HexColor("#f1f5f9")

# Traffic lights: a pale fill that prints well in grey, and always a word beside it.
LIGHT_FILLS = {"green": colors.HexColor("#d7f0dd"), "amber": colors.HexColor("#fde9c4"),
               "red": colors.HexColor("#f7d4d1"), "grey": colors.HexColor("#e5e7ea")}
LIGHT_WORDS = {"green": "Green", "amber": "Amber", "red": "Red", "grey": "Grey"}


class FontMissing(InvalidInput):
    """The report font is not installed."""


@lru_cache
def register_fonts() -> None:
    """Register the embedded font family once per process."""
    folder = next((d for d in FONT_DIRS if (d / FONT_FILES["Steward"]).is_file()), None)
    if folder is None:
        raise FontMissing("The report font (DejaVu Sans) is not installed on this server, so PDF reports cannot be "
                          "made. Ask an administrator to install the Debian package fonts-dejavu-core.")
    for name, file in FONT_FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    # Binary image streams: ASCII85 (reportlab's default) is pure Python here and took most of a chart's cost.
    rl_config.useA85 = 0
    pdfmetrics.registerFontFamily("Steward", normal="Steward", bold="Steward-Bold", italic="Steward-Italic",
                                  boldItalic="Steward-BoldItalic")


@dataclass(frozen=True)
class Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_bold: ParagraphStyle
    mono: ParagraphStyle
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    h3: ParagraphStyle
    bullet: ParagraphStyle
    lead: ParagraphStyle
    verdict: ParagraphStyle


@lru_cache
def styles() -> Styles:
    register_fonts()
    body = ParagraphStyle("body", fontName="Steward", fontSize=9.5, leading=13.2, textColor=INK, alignment=TA_LEFT,
                          spaceAfter=4, bulletFontName="Steward")
    return Styles(
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=8, leading=10.5, textColor=MUTED, spaceAfter=2),
        cell=ParagraphStyle("cell", parent=body, fontSize=8.3, leading=10.6, spaceAfter=0),
        cell_bold=ParagraphStyle("cell_bold", parent=body, fontName="Steward-Bold", fontSize=8.3, leading=10.6,
                                 spaceAfter=0),
        mono=ParagraphStyle("mono", parent=body, fontName="StewardMono", fontSize=7.4, leading=9.6, spaceAfter=0,
                            wordWrap="CJK"),  # a hash may break anywhere
        title=ParagraphStyle("title", parent=body, fontName="Steward-Bold", fontSize=19, leading=23,
                             textColor=ACCENT, spaceAfter=2),
        subtitle=ParagraphStyle("subtitle", parent=body, fontSize=11.5, leading=15, textColor=MUTED, spaceAfter=10),
        h1=ParagraphStyle("h1", parent=body, fontName="Steward-Bold", fontSize=13.5, leading=17, textColor=ACCENT,
                          spaceBefore=10, spaceAfter=5, keepWithNext=1),
        h2=ParagraphStyle("h2", parent=body, fontName="Steward-Bold", fontSize=11, leading=14, textColor=INK,
                          spaceBefore=8, spaceAfter=3, keepWithNext=1),
        h3=ParagraphStyle("h3", parent=body, fontName="Steward-Bold", fontSize=9.5, leading=12.5, spaceBefore=5,
                          spaceAfter=2, keepWithNext=1),
        bullet=ParagraphStyle("bullet", parent=body, leftIndent=12, bulletIndent=2, spaceAfter=3),
        lead=ParagraphStyle("lead", parent=body, fontSize=10.5, leading=14.5, spaceAfter=6),
        verdict=ParagraphStyle("verdict", parent=body, spaceBefore=5),
    )


# ── safe text ───────────────────────────────────────────────────────────────────────────────────────


def esc(value: Any) -> str:
    """Any value as text that reportlab shows literally: markup escaped, line breaks kept."""
    return escape("–" if value is None else str(value)).replace("\n", "<br/>")


def para(value: Any, style: ParagraphStyle | None = None) -> Paragraph:
    """A paragraph of user or store text, shown literally."""
    return Paragraph(esc(value), style or styles().body)


def labelled(label: str, value: Any, style: ParagraphStyle | None = None) -> Paragraph:
    """"**Label:** value" with both parts escaped."""
    return Paragraph(f"<b>{esc(label)}:</b> {esc(value)}", style or styles().body)


def bullets(items: Iterable[Any], style: ParagraphStyle | None = None) -> list[Paragraph]:
    return [Paragraph(esc(item), style or styles().bullet, bulletText="•") for item in items]


def shorten(value: Any, limit: int) -> str:
    text = "–" if value is None else str(value)
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f" … [shortened here; {len(text):,} characters in all]"


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a reader: a few significant digits, thousands separated; None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}" if abs(value) >= 0.001 or value == 0 else f"{value:.2e}"
    return str(value)


def when(value: datetime | None, *, time: bool = True) -> str:
    if value is None:
        return "–"
    return f"{value:%Y-%m-%d %H:%M} UTC" if time else f"{value:%Y-%m-%d}"


def stamp(value: datetime | None) -> str:
    """Date and time for a table cell whose header says "(UTC)"."""
    return "–" if value is None else f"{value:%Y-%m-%d %H:%M}"


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


# ── tables ──────────────────────────────────────────────────────────────────────────────────────────


def cell(value: Any, style: ParagraphStyle | None = None) -> Flowable | list[Flowable]:
    if isinstance(value, Flowable) or (isinstance(value, list) and all(isinstance(v, Flowable) for v in value)):
        return value
    return Paragraph(esc(shorten(value, MAX_CELL)), style or styles().cell)


def table(header: Sequence[str] | None, rows: Sequence[Sequence[Any]], widths: Sequence[float] | None = None, *,
          fills: dict[tuple[int, int], colors.Color] | None = None, zebra: bool = True, repeat: bool = True) -> Table:
    """A table of escaped Paragraph cells; ``widths`` are shares of the frame width (they need not sum to 1)."""
    s = styles()
    data = []
    if header is not None:
        data.append([cell(h, s.cell_bold) for h in header])
    data += [[cell(v) for v in row] for row in rows]
    columns = len(data[0]) if data else 1
    shares = list(widths or [1] * columns)
    total = sum(shares)
    col_widths = [FRAME_WIDTH * w / total for w in shares]
    result = Table(data, colWidths=col_widths, repeatRows=1 if header is not None and repeat else 0,
                   hAlign="LEFT")
    commands: list[tuple] = [
        ("FONTNAME", (0, 0), (-1, -1), "Steward"),  # tables reset the font per cell; never fall back to Helvetica
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ]
    start = 0
    if header is not None:
        commands += [("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL), ("LINEBELOW", (0, 0), (-1, 0), 0.8, MUTED)]
        start = 1
    if zebra:
        for index in range(start + 1, len(data), 2):
            commands.append(("BACKGROUND", (0, index), (-1, index), ZEBRA))
    for (column, row), fill in (fills or {}).items():
        commands.append(("BACKGROUND", (column, row + start), (column, row + start), fill))
    result.setStyle(TableStyle(commands))
    return result


def facts_table(facts: Sequence[tuple[str, Any]], widths: Sequence[float] = (1, 2.6)) -> Table:
    """Two columns, label and value, no header."""
    s = styles()
    return table(None, [[Paragraph(esc(label), s.cell_bold), value if isinstance(value, Flowable) else cell(value)]
                        for label, value in facts], widths, zebra=False)


def hash_cell(value: str | None) -> Flowable:
    return Paragraph(esc(value or "not recorded"), styles().mono)


def light_cell(light: str, words: str) -> Paragraph:
    """A traffic-light cell: the colour's name in bold, then what it means (never colour alone)."""
    return Paragraph(f"<b>● {esc(LIGHT_WORDS.get(light, light))}</b> – {esc(words)}", styles().cell)


def box(flowables: list[Flowable], fill: colors.Color = BOX_FILL) -> Table:
    """Flowables inside a tinted box (the summary's key messages)."""
    inner = Table([[flowables]], colWidths=[FRAME_WIDTH], hAlign="LEFT")
    inner.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), "Steward"),
                               ("BACKGROUND", (0, 0), (-1, -1), fill), ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                               ("LEFTPADDING", (0, 0), (-1, -1), 9), ("RIGHTPADDING", (0, 0), (-1, -1), 9),
                               ("TOPPADDING", (0, 0), (-1, -1), 7), ("BOTTOMPADDING", (0, 0), (-1, -1), 5)]))
    return inner


def heading(text: str, level: int = 1) -> Paragraph:
    s = styles()
    return Paragraph(esc(text), {1: s.h1, 2: s.h2, 3: s.h3}[level])


def section(title: str, *flowables: Flowable) -> list[Flowable]:
    """A level-1 heading kept with what follows it, starting on a new page when little room is left."""
    return [CondPageBreak(4 * cm), heading(title, 1), *flowables]


def keep(*flowables: Flowable) -> KeepTogether:
    return KeepTogether(list(flowables))


# ── charts ──────────────────────────────────────────────────────────────────────────────────────────


def chart_image(chart: Any, width: float = FRAME_WIDTH * 0.92, max_height: float = 15 * cm) -> Image:
    """An Altair chart (the same spec the pages show) rendered to PNG with vl-convert, scaled to ``width``."""
    import vl_convert

    png = vl_convert.vegalite_to_png(chart.to_dict(validate=False), scale=CHART_SCALE)
    reader = ImageReader(io.BytesIO(png))
    pixels_wide, pixels_high = reader.getSize()
    height = width * pixels_high / pixels_wide
    if height > max_height:
        width, height = width * max_height / height, max_height
    image = Image(io.BytesIO(png), width=width, height=height)
    image.hAlign = "LEFT"
    return image


# ── the document ────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Meta:
    """What the header and footer say on every page."""

    title: str
    project: str
    subject: str  # "employment v3", "All projects" …
    generated_at: datetime
    generated_by: str
    steward_version: str
    hashes: list[tuple[str, str]] = field(default_factory=list)  # (what, SHA-256 hex)
    store_state: tuple[int, str] | None = None  # the newest audit event when the report was made: (number, hash)


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text`` cut with an ellipsis so that it fits ``width`` points."""
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _footer_hashes(hashes: Sequence[tuple[str, str]], width: float) -> str:
    """As many of the hashes as fit on one footer line, each cut to 12 characters (they are in full on page 1)."""
    shown = ""
    for what, digest in hashes:
        if not digest:
            continue
        candidate = f"{shown}   {what} {digest[:12]}…" if shown else f"{what} {digest[:12]}…"
        if pdfmetrics.stringWidth(candidate, "StewardMono", 6.6) > width:
            break
        shown = candidate
    return shown


class _NumberedCanvas(pdfcanvas.Canvas):
    """Holds every page until the end, so each footer can say "page X of Y"."""

    def __init__(self, *args, meta: Meta, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._meta = meta
        self._pages: list[dict] = []

    def showPage(self) -> None:  # noqa: N802 - reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, page in enumerate(self._pages, start=1):
            self.__dict__.update(page)
            self._decorate(number, total)
            super().showPage()
        super().save()

    def _decorate(self, number: int, total: int) -> None:
        meta = self._meta
        left, right = MARGIN_X, PAGE_WIDTH - MARGIN_X
        self.saveState()
        # Header: report title on the left, what it describes on the right.
        top = PAGE_HEIGHT - 1.25 * cm
        self.setFillColor(ACCENT)
        self.setFont("Steward-Bold", 9)
        title = _fit(meta.title, "Steward-Bold", 9, FRAME_WIDTH * 0.45)
        self.drawString(left, top, title)
        self.setFillColor(MUTED)
        self.setFont("Steward", 8.5)
        where = " · ".join(part for part in (f"Project: {meta.project}" if meta.project else "", meta.subject)
                           if part)
        self.drawRightString(right, top, _fit(where, "Steward", 8.5, FRAME_WIDTH * 0.53))
        self.setStrokeColor(RULE)
        self.setLineWidth(0.6)
        self.line(left, top - 0.22 * cm, right, top - 0.22 * cm)
        # Footer: who made it, when, with which Steward, the hashes of what it describes, and the page number.
        base = 1.45 * cm
        self.line(left, base + 0.42 * cm, right, base + 0.42 * cm)
        self.setFont("Steward", 7.3)
        self.setFillColor(MUTED)
        made = (f"Generated {meta.generated_at:%Y-%m-%d %H:%M} UTC by {meta.generated_by} · "
                f"Steward {meta.steward_version}")
        page = f"Page {number} of {total}"
        self.drawString(left, base, _fit(made, "Steward", 7.3, FRAME_WIDTH - 2.2 * cm))
        self.setFont("Steward-Bold", 7.5)
        self.setFillColor(INK)
        self.drawRightString(right, base, page)
        if meta.hashes:
            self.setFont("StewardMono", 6.6)
            self.setFillColor(MUTED)
            self.drawString(left, base - 0.36 * cm, _footer_hashes(meta.hashes, FRAME_WIDTH))
        self.restoreState()


def identification(meta: Meta, extra: Sequence[tuple[str, Any]] = ()) -> list[Flowable]:
    """The block under the title: what the report describes, when and by whom it was made, and the full hashes."""
    rows: list[tuple[str, Any]] = [*([("Project", meta.project)] if meta.project else []), *extra,
                                   ("Generated", f"{meta.generated_at:%Y-%m-%d %H:%M} UTC by {meta.generated_by}"),
                                   ("Steward version", meta.steward_version)]
    rows += [(what, hash_cell(digest)) for what, digest in meta.hashes]
    if meta.store_state is not None:
        rows.append((f"Store state (audit event {meta.store_state[0]:,})", hash_cell(meta.store_state[1])))
    return [facts_table(rows, widths=(1, 3.2))]


def title_block(meta: Meta, subtitle: str) -> list[Flowable]:
    s = styles()
    return [Paragraph(esc(meta.title), s.title), Paragraph(esc(subtitle), s.subtitle)]


def render(meta: Meta, summary: list[Flowable], details: list[Flowable]) -> tuple[bytes, int]:
    """The PDF: the one-page summary, a page break, then the details. Returns the bytes and the page count."""
    register_fonts()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM, title=meta.title, author=f"Steward for {meta.generated_by}",
        subject=meta.subject, creator=f"Steward {meta.steward_version}",
        # Start every page in the embedded font: the default Helvetica would be referenced without being embedded.
        initialFontName="Steward", initialFontSize=9.5,
    )
    # The summary is one page whatever it holds: if it would run over, it is shrunk to fit.
    page = KeepInFrame(FRAME_WIDTH, PAGE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM - 12, summary, mode="shrink")
    story = [page, PageBreak(), *details] if details else [page]
    pages: list[int] = []
    document.build(story, canvasmaker=partial(_NumberedCanvas, meta=meta),
                   onLaterPages=lambda c, d: pages.append(d.page), onFirstPage=lambda c, d: pages.append(d.page))
    return buffer.getvalue(), max(pages, default=1)


def spacer(height: float = 0.25 * cm) -> Spacer:
    return Spacer(1, height)
