# The README's commands. `make demo` and `make test` install what they need first.
JOBS ?= 2
RELEASE := build/release
ASAN := build/asan
FUZZ := build/fuzz
FUZZ_SECONDS ?= 300
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps build demo test test-release test-asan bench fuzz clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake -S . -B $(RELEASE) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release -DAIFINOPS_WERROR=ON >/dev/null
	cmake --build $(RELEASE) -j$(JOBS)

## demo: build, generate a six-month synthetic AI organisation, ingest it, print a showback,
## then serve the API and dashboard on 127.0.0.1:8080 and the gateway on :8081 until Ctrl-C.
## DEMO_SERVE=0 stops after the showback (for scripts); scripts/demo.py lists the knobs.
demo: build
	AIFINOPS=$(RELEASE)/aifinops python3 scripts/demo.py

## test: every test on the Release build, then again under ASan + UBSan the unit tests and
## the end-to-end tests labelled "sanitized" (tests/CMakeLists.txt).
test: test-release test-asan

test-release: build
	ctest --test-dir $(RELEASE) --output-on-failure -j$(JOBS)

test-asan: deps
	cmake -S . -B $(ASAN) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DAIFINOPS_SANITIZE=ON \
	  -DCMAKE_CXX_FLAGS="-O1" >/dev/null
	cmake --build $(ASAN) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN) --output-on-failure -j$(JOBS) -L 'unit|sanitized'

## bench: Release build with Google Benchmark targets; see docs/benchmarks.md for the scripts.
bench: deps
	cmake -S . -B build/bench $(GENERATOR) -DCMAKE_BUILD_TYPE=Release -DAIFINOPS_BENCH=ON -DAIFINOPS_TESTS=OFF >/dev/null
	cmake --build build/bench -j$(JOBS)
	build/bench/bench/focus_reader_bench
	build/bench/bench/anomaly_eval
	build/bench/bench/forecast_eval

## fuzz: libFuzzer on the FOCUS/CSV reader, the GPU telemetry readers (DCGM text, nvidia-smi
## CSV) and the AI usage readers (OpenAI/Anthropic pages, OTLP), FUZZ_SECONDS each (default
## 300), one after the other. Seeds: fuzz/corpus*, and tests/fixtures with the byte that picks
## the reader in front. See docs/fuzzing.md.
fuzz:
	@./scripts/install-deps.sh --fuzz
	CXX=clang++ cmake -S . -B $(FUZZ) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIFINOPS_FUZZ=ON -DAIFINOPS_TESTS=OFF >/dev/null
	cmake --build $(FUZZ) -j$(JOBS) --target focus_reader_fuzz decimal_fuzz wire_fuzz http_parse_fuzz gpu_telemetry_fuzz ai_sources_fuzz
	mkdir -p $(FUZZ)/corpus $(FUZZ)/corpus_gpu $(FUZZ)/corpus_ai $(FUZZ)/artifacts
	cp -n fuzz/corpus/* $(FUZZ)/corpus/ 2>/dev/null || true
	cp -n fuzz/corpus_ai/* $(FUZZ)/corpus_ai/ 2>/dev/null || true
	for f in tests/fixtures/gpu/*.prom; do (printf '\000'; head -c 60000 "$$f") > $(FUZZ)/corpus_gpu/dcgm_$$(basename $$f); done
	for f in tests/fixtures/gpu/*.csv; do (printf '\001'; head -c 60000 "$$f") > $(FUZZ)/corpus_gpu/smi_$$(basename $$f); done
	for f in tests/fixtures/openai/usage_pages/*.json; do (printf '\000'; cat "$$f") > $(FUZZ)/corpus_ai/usage_$$(basename $$f); done
	(printf '\001'; cat tests/fixtures/openai/spec_costs.json) > $(FUZZ)/corpus_ai/costs_spec.json
	for f in tests/fixtures/anthropic/*.json; do (printf '\002'; cat "$$f") > $(FUZZ)/corpus_ai/anthropic_$$(basename $$f); done
	for f in tests/fixtures/otlp/*.json; do for c in 4 5 6; do (printf "\\00$$c"; cat "$$f") > $(FUZZ)/corpus_ai/otlp$${c}_$$(basename $$f); done; done
	mkdir -p $(FUZZ)/corpus_wire $(FUZZ)/corpus_http
	cp -n fuzz/corpus_http/* $(FUZZ)/corpus_http/ 2>/dev/null || true
	for f in tests/fixtures/formats/openai-api/*.sse tests/fixtures/formats/gateway-mock/*.sse; do case $$f in *responses*) s='\003';; *) s='\000';; esac; (printf "$$s"; cat "$$f") > $(FUZZ)/corpus_wire/$$(basename $$f); done
	for f in tests/fixtures/formats/anthropic/*.sse; do (printf '\004'; cat "$$f") > $(FUZZ)/corpus_wire/$$(basename $$f); done
	$(FUZZ)/fuzz/focus_reader_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	  -dict=fuzz/focus.dict -artifact_prefix=$(FUZZ)/artifacts/ $(FUZZ)/corpus
	$(FUZZ)/fuzz/gpu_telemetry_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	  -dict=fuzz/gpu_telemetry.dict -artifact_prefix=$(FUZZ)/artifacts/ $(FUZZ)/corpus_gpu
	$(FUZZ)/fuzz/ai_sources_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	  -dict=fuzz/ai_sources.dict -artifact_prefix=$(FUZZ)/artifacts/ $(FUZZ)/corpus_ai
	$(FUZZ)/fuzz/wire_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	  -artifact_prefix=$(FUZZ)/artifacts/ $(FUZZ)/corpus_wire
	$(FUZZ)/fuzz/http_parse_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	  -artifact_prefix=$(FUZZ)/artifacts/ $(FUZZ)/corpus_http

clean:
	rm -rf build
