"""Build the tiny model the real-vLLM tier serves: a byte-level BPE tokenizer trained on a
generated text, and a randomly initialised 2-layer Llama saved as safetensors. No hub access;
seeded, so every machine builds the same weights. Runs with the real-vLLM venv's interpreter
(transformers, tokenizers, torch), called by scripts/real-vllm-env:

    <venv>/bin/python tests/realvllm/make_model.py OUT_DIR

The output is only good for comparing servers with each other (greedy token ids of a P/D pair
against a single server); its text is noise.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SEED = 1234
VOCAB_SIZE = 1024
# A chat template of our own: vLLM's chat endpoint refuses a tokenizer without one.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TEXT = (
    "prefill decode cache block token layer tensor kernel memory network device host port "
    "request response stream chunk batch queue model weight server client proxy router "
    "the a of to and in is it that for on with as by at from this be are was were can will "
    "one two three four five six seven eight nine ten hello world test answer question "
    "fast slow small large first last next every some many few more less time space"
)


def corpus(lines: int = 4000) -> list[str]:
    """Seeded sentences over a fixed word list: the same text, hence the same merges, everywhere."""
    rng = random.Random(SEED)
    words = TEXT.split()
    out = []
    for _ in range(lines):
        words = [rng.choice(words) for _ in range(rng.randint(4, 16))]
        out.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", ","]))
    return out


def main(out_dir: str) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    special = ["<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="<unk>", chat_template=CHAT_TEMPLATE, model_max_length=1024,
    )
    fast.save_pretrained(out)

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=128, intermediate_size=256,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,  # head size 64
        max_position_embeddings=1024, bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
        # Larger than the usual 0.02 so greedy argmax is decisive, not a near-tie that float
        # rounding between two servers could flip.
        initializer_range=0.5,
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    print(f"tiny model: {sum(p.numel() for p in model.parameters())} parameters in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
