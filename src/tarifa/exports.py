"""Extra export format for listings: tab-separated plain text, offered as ``.txt`` (seed 003)."""

from typing import Any

from import_export.formats.base_formats import TSV


class TXT(TSV):
    """Shown and saved as "txt"; the content is tablib's TSV."""

    def get_title(self) -> str:
        return "txt"

    def get_extension(self) -> str:
        return "txt"

    def get_content_type(self) -> str:
        return "text/plain"

    def export_data(self, dataset: Any, **kwargs: Any) -> Any:
        return dataset.export("tsv", **kwargs)
