"""Spreadsheets (.xlsx) and CSV files as rows that each name their columns."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator

import openpyxl
from openpyxl.chartsheet import Chartsheet
from openpyxl.workbook import Workbook

from ingest.formats import Unreadable
from ingest.formats.office import corrupt_reason, office_package
from ingest.formats.rows import table_text
from ingest.formats.text import decode_text
from ingest.records import Page

# Enough of the file for csv.Sniffer to tell the delimiter.
_SNIFF_CHARS = 64 * 1024
_DELIMITERS = ",;\t|"

logger = logging.getLogger(__name__)


def read_xlsx(data: bytes) -> list[Page]:
    """A page per sheet with data, numbered by the sheet's position and named "sheet <name>"."""
    package = office_package(data, "spreadsheet")
    try:
        # Read-only streams rows instead of building every cell; data_only gives formulas' values.
        workbook = openpyxl.load_workbook(package, read_only=True, data_only=True)
        try:
            pages = list(_sheet_pages(workbook))
        finally:
            workbook.close()
    except Exception as error:  # openpyxl raises KeyError, ValueError, InvalidFileException...
        logger.info("cannot read an xlsx: %r", error)
        raise Unreadable(corrupt_reason("spreadsheet")) from error
    if not pages:
        raise Unreadable("contains no data in any sheet; check that it is the right file")
    return pages


def _sheet_pages(workbook: Workbook) -> Iterator[Page]:
    for position, name in enumerate(workbook.sheetnames, start=1):
        sheet = workbook[name]
        if isinstance(sheet, Chartsheet):  # a chart, no cells
            continue
        if text := table_text(sheet.iter_rows(values_only=True)):
            yield Page(position, text, f"sheet {name}")


def read_csv(data: bytes) -> list[Page]:
    """The rows as page 1, the first row taken as the header."""
    text = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:_SNIFF_CHARS], delimiters=_DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    try:
        rows = table_text(csv.reader(io.StringIO(text), dialect))
    except csv.Error as error:
        raise Unreadable(
            f"could not be read as CSV ({error}); open it in a spreadsheet, save it as CSV again "
            "and upload that"
        ) from error
    if not rows:
        raise Unreadable("contains no rows; check the file")
    return [Page(number=1, text=rows)]
