"""A minimal PDF writer for tests: one page per content stream, Helvetica, no dependencies.

Only what a reader needs to extract the text: catalog, pages, a font, one content stream per
page and a correct cross-reference table (byte offsets of every object). Besides ordinary PDFs
it writes hostile ones: flate streams that inflate a thousandfold, and very many pages.
"""

from __future__ import annotations

import zlib


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_operators(lines: list[str]) -> bytes:
    """A content stream showing lines one under the other (ASCII text)."""
    operators = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    operators += [f"({_escape(line)}) Tj T*" for line in lines]
    operators.append("ET")
    return "\n".join(operators).encode("ascii")


def _deflated(stream: bytes, padding: int) -> bytes:
    """stream then `padding` spaces (rounded up to whole MiB), flate-compressed.

    After a full flush a compressor starts afresh, so one compressed MiB of spaces can be
    repeated as is: a bomb of any size is built in no time. The stream is left unterminated
    (no checksum), which readers inflate all the same.
    """
    if not padding:
        return zlib.compress(stream, 9)
    compressor = zlib.compressobj(9)
    head = compressor.compress(stream) + compressor.flush(zlib.Z_FULL_FLUSH)
    mebibyte = compressor.compress(b" " * 1024 * 1024) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + mebibyte * -(-padding // (1024 * 1024))


def pdf_of_streams(contents: list[bytes], *, compress: bool = False, padding: int = 0) -> bytes:
    """A valid PDF whose page i draws contents[i] (flate-compressed when compress, followed by
    `padding` spaces that only appear once the stream is inflated)."""
    page_count = len(contents)
    font_id = 3
    first_page_id = 4
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        (
            "<< /Type /Pages /Kids ["
            + " ".join(f"{first_page_id + 2 * i} 0 R" for i in range(page_count))
            + f"] /Count {page_count} >>"
        ).encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, stream in enumerate(contents):
        content_id = first_page_id + 2 * index + 1
        objects.append(
            (
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {content_id} 0 R >>"
            ).encode()
        )
        if compress:
            stream = _deflated(stream, padding)
        flate = b" /Filter /FlateDecode" if compress else b""
        objects.append(
            b"<< /Length %d%s >>\nstream\n" % (len(stream), flate) + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


def make_pdf(pages: list[list[str]], *, compress: bool = False) -> bytes:
    """A valid PDF whose page i shows pages[i] line by line (ASCII text)."""
    return pdf_of_streams([text_operators(lines) for lines in pages], compress=compress)


def make_flate_bomb_pdf(inflated_bytes: int, *, pages: int = 1) -> bytes:
    """A PDF of a few kilobytes whose page streams inflate to inflated_bytes in all.

    Each stream shows one line of text and then pads with whitespace, which a reader must
    still inflate and scan.
    """
    stream = text_operators(["inflated page"])
    return pdf_of_streams([stream] * pages, compress=True, padding=inflated_bytes // pages)


def make_slow_pdf(operators: int) -> bytes:
    """A compressed one-page PDF of `operators` tiny text-showing operators: slow to extract."""
    stream = b"BT /F1 12 Tf 72 720 Td\n" + b"(a) Tj\n" * operators + b"ET"
    return pdf_of_streams([stream], compress=True)
