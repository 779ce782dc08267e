#!/usr/bin/env bash
# Scoring from the shell with curl against srppod's Unix socket (see docs/daemon-api.md).
#   bash examples/curl.sh [SOCKET]      (default /run/srppod/http.sock)
set -euo pipefail
SOCK="${1:-/run/srppod/http.sock}"
api() { curl -sS --fail-with-body --unix-socket "$SOCK" "$@"; echo; }

api http://srppod/v1/health
api http://srppod/v1/ready
api http://srppod/v1/models

# Token ids: per-token log-probs under PT and SFT, the coherent reward, truncation.
api -H 'Content-Type: application/json' -d '{"items":[{"prompt_ids":[1,9690,28],"response_ids":[253,1345,2]}]}' \
    http://srppod/v1/score
# Plain text and chat, encoded by the daemon with the models' tokenizer; an idempotent id and a client name.
api -H 'Content-Type: application/json' -d '{"id":"req-1","client":"shell","items":[
      {"prompt":"What is 2+2?","response":"4"},
      {"messages":[{"role":"user","content":"Say hi"}],"response":"Hi there!"}]}' \
    http://srppod/v1/score
# Tokenizer.
api -d '{"text":"Hello world"}' http://srppod/v1/tokenize
api -d '{"messages":[{"role":"user","content":"Hi"}],"add_generation_prompt":true}' http://srppod/v1/tokenize
api -d '{"ids":[19556,905]}' http://srppod/v1/detokenize
# OpenRLHF's remote reward model request.
api -d '{"query":["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>"],
         "prompts":["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"],"labels":[""]}' \
    http://srppod/get_reward
# Prometheus metrics.
curl -sS --unix-socket "$SOCK" http://srppod/metrics | grep -E '^srppod_(requests_total|tokens_per_second)' | head -5
