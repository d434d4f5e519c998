"""Services over several domain apps (the "services" layer of docs/architecture.md): the jobs
that read accounts, DIDs, CDRs and calls and post through billing's ledger -- recurring and
one-time service charges, minimum billing, the unpaid block -- and the ``tarifa worker`` and
``tarifa charges`` commands that run them. Above every domain app, below the API and the CLI."""
