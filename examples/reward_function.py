"""A custom reward function for a Python RL trainer that calls srppod: the coherent reward
log p_SFT(y|x) - log p_PT(y|x) of each sampled response, with the truncation treatment (a response
cut off before EOS gets -truncation_penalty).

Works with trainers that take a callable `reward_fn(prompts, completions) -> list[float]` (TRL's
GRPOTrainer `reward_funcs`, custom loops) and with token ids straight from the sampler:

    from reward_function import CoherentRewardFunction
    reward_fn = CoherentRewardFunction("/run/srppod/http.sock")
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_fn], ...)        # TRL
    rewards = reward_fn.from_ids(prompt_ids, response_ids)                  # ids from your sampler

OpenRLHF needs no Python code: start srppod with --tcp-port 8700 and pass
`--remote_rm_url http://127.0.0.1:8700/get_reward`.
"""
import itertools

from srppo_client import Client


class CoherentRewardFunction:
    __name__ = "coherent_reward"   # trainers log reward functions by name

    def __init__(self, address, truncation_penalty=1.0, client_name="reward-fn"):
        self.client = Client(address, client_name=client_name)
        self.truncation_penalty = truncation_penalty
        self.max_items = self.client.models()["limits"]["max_items"]
        self._step = itertools.count()

    def _rewards(self, items):
        rewards = []
        for start in range(0, len(items), self.max_items):
            step = next(self._step)
            results = self.client.score(items[start:start + self.max_items], request_id=f"{self.client.client_name}-{step}")["results"]
            rewards += [-self.truncation_penalty if r["truncated"] else r["reward"] for r in results]
        return rewards

    def from_ids(self, prompt_ids, response_ids):
        """Rewards of responses given as token ids (each ending with EOS unless it was cut off)."""
        return self._rewards([{"prompt_ids": list(p), "response_ids": list(r)} for p, r in zip(prompt_ids, response_ids)])

    def __call__(self, prompts, completions, **kwargs):
        """TRL-style: `prompts` are strings or chat message lists, `completions` strings or
        `[{"role": "assistant", "content": ...}]` lists. The daemon closes each response with EOS
        (or the end-of-turn token for chat), i.e. scores it as finished."""
        items = []
        for prompt, completion in zip(prompts, completions):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            if isinstance(prompt, list):
                items.append({"messages": prompt, "response": text})
            else:
                items.append({"prompt": prompt, "response": text})
        return self._rewards(items)
