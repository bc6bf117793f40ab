# fastsock — every target works from a fresh clone: it makes .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test test-repeat lint format docs soak fuzz bench bench-replicate bench-scale bench-full bench-http bench-apps plot peers calibrate calibrate-agree http-tools app-tools clean

# The native load engine (fastsock/native/*.c) is compiled by the install: rebuild when it changes.
$(STAMP): pyproject.toml $(wildcard fastsock/native/*.c fastsock/native/*.h)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The suite N times in a row (default 5); stops at the first failing run and says which.
N ?= 5
test-repeat: $(STAMP)
	@for i in $$(seq 1 $(N)); do \
	  echo "== test run $$i of $(N)"; \
	  $(PY) -m pytest -q || { echo "== run $$i of $(N) failed"; exit 1; }; \
	done; echo "== all $(N) runs passed"

# The long reliability runs (tests/reliability; CI runs a short version in make test).
# soak: the integrity soak for SOAK_S seconds per transport (default 150: 5 min in all), and
# FUZZ_EXAMPLES hypothesis inputs per fuzz test, plus the rest of the suite once.
SOAK_S ?= 150
FUZZ_EXAMPLES ?= 3000
soak: $(STAMP)
	FASTSOCK_SOAK_S=$(SOAK_S) FASTSOCK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/reliability

# Coverage-guided fuzzing of the HTTP handler and the endpoint parser for FUZZ_S seconds
# (atheris, installed here; not needed by make test). Crashing inputs land in .fuzz/crashes/:
# copy them to tests/reliability/fuzz_regressions/ so CI replays them.
FUZZ_S ?= 60
fuzz: $(STAMP)
	@$(PY) -c 'import atheris' 2>/dev/null || $(PY) -m pip install --quiet atheris || \
	  { echo "fuzz: atheris does not install here (it needs a wheel for this Python or clang)"; exit 1; }
	mkdir -p .fuzz/corpus .fuzz/crashes
	$(PY) -m tests.reliability.fuzz_atheris .fuzz/corpus tests/reliability/fuzz_regressions \
	  -max_total_time=$(FUZZ_S) -artifact_prefix=.fuzz/crashes/ -print_final_stats=1
	@echo "fuzz: corpus $$(ls .fuzz/corpus | wc -l) inputs; files in .fuzz/crashes: $$(ls .fuzz/crashes | wc -l)"

# docs/cli.md from the click commands' own --help (tests/test_docs.py fails when it is stale).
docs: $(STAMP)
	$(PY) -m fastsock.clidoc > docs/cli.md

lint: $(STAMP)
	$(VENV)/bin/ruff check fastsock bench tests
	$(VENV)/bin/ruff format --check fastsock bench tests

format: $(STAMP)
	$(VENV)/bin/ruff format fastsock bench tests
	$(VENV)/bin/ruff check --fix fastsock bench tests

# Build the C peers (echo server, load client) with cc and list which peers can run here.
peers: $(STAMP)
	$(PY) -m bench.peers.registry

# fastsock load vs the C load client on the C echo server, interleaved (a few minutes).
calibrate: $(STAMP)
	$(PY) -m bench.studies.calibrate_load --out results/calibrate_load.json

# Do the native and the Python engine agree where neither client is the bottleneck? (~2 min)
calibrate-agree: $(STAMP)
	$(PY) -m bench.studies.agree_load --out results/calibrate_agree.json

# The benchmark matrix (bench/matrix/matrix.toml): results/bench.json, PNG charts and
# results/REPORT.md with its findings (95% CIs, verdicts). bench: the quick profile, the headline
# questions in paired trials (~2.5 min; ~3 with the install); bench-full: all of it, with the
# static files (bench-http) and the real servers (bench-apps).
bench: $(STAMP)
	$(PY) -m bench.matrix --profile quick --out results

# Do two runs agree? K quick matrix runs back to back (default 3, ~2.5 min each), every pair's
# findings compared: results/replicate.json and a REPORT.md section (make plot redraws it).
K ?= 3
bench-replicate: $(STAMP)
	$(PY) -m bench.matrix.replicate --runs $(K) --out results/replicate.json
	$(VENV)/bin/fastsock plot results/bench.json

# Cost as connections grow: 1 to 8,000 connections, 64 B and 64 KiB, fastsock's engines, uvloop
# and C: msgs/s, p99, peak RSS per connection, fairness, idle RSS (~6 min): results/scale.json,
# scale.png and its REPORT.md section.
SCALE_ROUNDS ?= 2
bench-scale: $(STAMP)
	$(PY) -m bench.studies.scale --conns 1,100,1000,8000 --sizes 64,64K --rounds $(SCALE_ROUNDS) \
	  --duration 2 --warmup 0.5 --idle 8000 --out results/scale.json
	$(VENV)/bin/fastsock plot results/bench.json

bench-full: $(STAMP) http-tools app-tools
	$(PY) -m bench.studies.scale --conns 1,10,100,1000,4000,8000 --sizes 64,64K --rounds 3 \
	  --idle 8000 --out results/scale.json
	$(PY) -m bench.http --profile full --out results/http.json
	$(PY) -m bench.apps --profile full --out results/apps.json
	$(PY) -m bench.matrix --profile full --out results

# Static files: fastsock (sendfile and copy) vs nginx over TCP (wrk) and UNIX (bench/http/http_load.c).
# nginx and wrk are Debian packages; without them the run says so and skips nginx / uses the C client.
# results/http.json gets its own chart and section in REPORT.md (make plot, make bench).
bench-http: $(STAMP) http-tools
	$(PY) -m bench.http --out results/http.json
	$(VENV)/bin/fastsock plot results/bench.json

http-tools:
	@command -v wrk >/dev/null && { command -v nginx >/dev/null || test -x /usr/sbin/nginx; } || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && apt-get install -y -qq nginx wrk >/dev/null; } || \
	  echo "bench-http: could not install nginx/wrk (needs root and apt-get); running without them"

# Real servers over UNIX vs TCP: Redis (redis-benchmark), PostgreSQL (pgbench) and nginx proxying
# to fastsock serve --mode http (wrk) and the veth container path, each started in a temp dir and
# stopped by PID (~4 min).
# results/apps.json gets its chart and REPORT.md section (make plot redraws them).
bench-apps: $(STAMP) app-tools
	$(PY) -m bench.apps --profile quick --out results/apps.json
	$(VENV)/bin/fastsock plot results/bench.json

# Debian packages of the real servers; an app that stays missing is skipped with the reason.
app-tools: http-tools
	@{ command -v redis-server && command -v redis-benchmark && \
	   ls /usr/lib/postgresql/*/bin/pgbench; } >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && apt-get install -y -qq redis-server redis-tools postgresql >/dev/null; } || \
	  echo "bench-apps: could not install redis/postgresql (needs root and apt-get); running without them"

# Redraw every chart and REPORT.md from results/bench.json without running anything.
plot: $(STAMP)
	$(VENV)/bin/fastsock plot results/bench.json

clean:
	rm -rf $(VENV) build *.egg-info bench/peers/bin
