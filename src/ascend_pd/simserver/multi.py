"""Completions whose ``prompt`` is a list of prompts, as vLLM serves them (non-streamed).

vLLM runs one engine request per prompt but the request has one ``kv_transfer_params``:
a prefill answers with the params of the *first* prompt only (``final_res_batch[0]``) and
keeps every prompt's blocks; a decode applies the one set of params to every prompt. So a
P/D pair fed a list of prompts answers 200 with every choice after the first computed from
the first prompt's KV (wrong text), and the other prompts' blocks stay held on P. The
simulator does the same, so the proxy's handling of list prompts is tested against it.
"""

from __future__ import annotations

import json
from typing import Any

from ascend_pd.simserver.tokens import count_prompt, generated_tokens, prompt_text


def prompt_bodies(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """One body per prompt when ``prompt`` is a list of more than one text or token list."""
    prompt = body.get("prompt")
    if "messages" in body or not isinstance(prompt, list) or len(prompt) < 2:
        return None
    if all(isinstance(p, int) for p in prompt):
        return None  # one tokenized prompt
    return [{**body, "prompt": p} for p in prompt]


def answer(first: bytes, bodies: list[dict[str, Any]], seeds: list[str],
           max_tokens: int) -> bytes:
    """``first`` (the answer for prompt 0) with one choice per prompt, generated from
    ``seeds`` (the KV each prompt's choice was computed from), usage summed."""
    data = json.loads(first)
    template = data["choices"][0]
    choices = []
    for index, seed in enumerate(seeds):
        text = "".join(generated_tokens(seed, 0, max_tokens))
        choices.append({**template, "index": index, "text": text})
    data["choices"] = choices
    prompt = sum(count_prompt(b) for b in bodies)
    data["usage"] = {**data["usage"], "prompt_tokens": prompt,
                     "completion_tokens": max_tokens * len(seeds),
                     "total_tokens": prompt + max_tokens * len(seeds)}
    return json.dumps(data, separators=(",", ":")).encode()


def own_seeds(bodies: list[dict[str, Any]]) -> list[str]:
    return [prompt_text(b) for b in bodies]
