"""``tarifa invoice-sample``: regenerate the sample invoice of the documentation
(docs/samples/invoice.pdf and the picture of its first page) in a throwaway database."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import typer


def invoice_sample(
    pdf: Path = typer.Option(Path("docs/samples/invoice.pdf"), "--pdf", help="Where to write the PDF."),
    png: Path | None = typer.Option(
        Path("docs/images/invoice.png"), "--png", help="Where to write page 1 as PNG (needs pdftoppm)."
    ),
    csv: Path | None = typer.Option(None, "--csv", help="Also write the invoice as CSV here."),
    resolution: int = typer.Option(80, "--resolution", min=30, max=300, help="PNG resolution (dots per inch)."),
) -> None:
    """Build a realistic sample invoice (two pages of calls, fees, usage, discount, penalty, VAT) in a
    temporary SQLite database and write it as PDF and its first page as PNG."""
    if png is not None and shutil.which("pdftoppm") is None:
        typer.echo("error: --png needs pdftoppm (Debian: apt-get install poppler-utils)", err=True)
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="tarifa-sample-") as tmp:
        # A database of our own: the sample never touches the configured one.
        os.environ["TARIFA_VAR_DIR"] = tmp
        os.environ["TARIFA_DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'sample.sqlite3'}"
        from tarifa.bootstrap import start_django

        start_django(database=False)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from tarifa.billing.render import invoice_csv, invoice_pdf
        from tarifa.billing.sample import sample_customer, sample_invoice, sample_operator

        invoice = sample_invoice(sample_customer(sample_operator(), account_code="C7K2Q9XZ"))
        data = invoice_pdf(invoice)
        pdf.parent.mkdir(parents=True, exist_ok=True)
        pdf.write_bytes(data)
        typer.echo(f"{pdf}: {len(data):,} bytes")
        if csv is not None:
            csv.parent.mkdir(parents=True, exist_ok=True)
            csv.write_bytes(invoice_csv(invoice).encode())
            typer.echo(f"{csv}: written")
        if png is not None:
            png.parent.mkdir(parents=True, exist_ok=True)
            stem = Path(tmp) / "page"
            subprocess.run(
                ["pdftoppm", "-png", "-r", str(resolution), "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)],
                check=True,
            )
            shutil.copyfile(stem.with_suffix(".png"), png)
            typer.echo(f"{png}: page 1 at {resolution} dpi")


def register(app: typer.Typer) -> None:
    app.command("invoice-sample")(invoice_sample)
