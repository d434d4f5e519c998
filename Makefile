# Tarifa: the two commands of the quick start.
#   make run   - set up .venv, migrate the embedded SQLite database, load demo data once, serve and run
#                the worker (scripts/run.sh: Ctrl-C stops both)
#   make test  - set up .venv and run the whole suite on SQLite and on a real PostgreSQL
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install bench clean

$(STAMP): pyproject.toml constraints.txt scripts/bootstrap.sh
	scripts/bootstrap.sh
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tarifa migrate
	$(BIN)/tarifa demo --if-empty
	@$(BIN)/tarifa createadmin
	scripts/run.sh $(BIN)/tarifa

test: $(STAMP)
	scripts/test.sh

bench: $(STAMP)
	$(BIN)/python bench/rating.py
	$(BIN)/python bench/deck_import.py
	$(BIN)/python bench/ingest.py
	# the switch server as README recommends it: no access log, no ASGI front (TARIFA_BODY_TIMEOUT=0)
	TARIFA_ACCESS_LOG=0 TARIFA_BODY_TIMEOUT=0 $(BIN)/python bench/authorize.py
	$(BIN)/python bench/recurring.py

clean:
	rm -rf $(VENV) var .pytest_cache
