"""`t5_ti`: textual inversion — od's T5 conditioner plus learned `<concept_i>` token rows.

Seed 000 resized T5's embedding table and left the whole MusicGen LM trainable. Here the T5
encoder, its embedding table, the projection and the LM stay frozen (T5 is kept outside the
module tree, as AudioCraft does for a frozen T5); the only parameter this conditioner adds is
`concept_embeds` [N_new, D_t5], one row per added token, which *is* in the module tree, so the
solver's `trainable` pattern selects it and nothing else moves.

    "music in the style of <8bit>" -> "... <8bit_0> <8bit_1> ... <8bit_{n-1}>"  (tokenize)
    ids [B, L] -> rows: T5's own table for ids < base_vocab, concept_embeds otherwise  [B, L, D_t5]
    -> frozen T5 encoder (inputs_embeds) -> output_proj -> [B, L, D_lm] -> cross-attention

New rows start at the mean of T5's rows plus Gaussian noise (scaled by their std). New token
ids are `len(tokenizer)` onwards, which may fall inside a table padded to a multiple of 128
(t5-base: 32100 tokens, 32128 rows): rows are looked up by concept index, never by id, so the
padding rows are never used.
"""
from __future__ import annotations

import re
import typing as tp

import torch
from torch import nn

from .registry import register_conditioner
from .t5 import T5Conditioner

PLACEHOLDER = re.compile(r'<([^<>\s]+)>')  # `<8bit>` in a prompt: a learned concept's tokens


def concept_token_names(concept: str, tokens_num: int) -> tp.List[str]:
    """`<concept_0> ... <concept_{n-1}>`: the tokens one concept adds to the tokenizer."""
    return [f'<{concept}_{i}>' for i in range(tokens_num)]


@register_conditioner('t5_ti')
class TextualInversionT5(T5Conditioner):
    """T5 text conditioner whose tokenizer knows learned concepts.

    Args (besides `t5`'s): concepts: names whose tokens are added; tokens_num: tokens per
    concept; init_noise: std of the noise added to the mean row (in units of the rows' std).
    """

    def __init__(self, name: str, output_dim: int, device: str, concepts: tp.Sequence[str] = (),
                 tokens_num: int = 5, init_noise: float = 0.1, finetune: bool = False,
                 autocast_dtype: tp.Optional[str] = 'float32', word_dropout: float = 0.,
                 normalize_text: bool = False):
        if finetune:
            raise ValueError("t5_ti keeps T5 frozen (finetune must be false): only concept rows train.")
        super().__init__(name, output_dim, finetune=False, device=device, autocast_dtype=autocast_dtype,
                         word_dropout=word_dropout, normalize_text=normalize_text)
        self._setup_concepts()
        for concept in concepts:
            self.add_concept(concept, tokens_num=tokens_num, init_noise=init_noise)

    @classmethod
    def from_t5(cls, cond: T5Conditioner) -> 'TextualInversionT5':
        """The same conditioner (shared T5, tokenizer copy, projection) able to take concepts."""
        if isinstance(cond, cls):
            return cond
        import copy
        new = cls.__new__(cls)
        new.__dict__.update(cond.__dict__)  # nn.Module state lives in __dict__: modules are shared
        new.t5_tokenizer = copy.deepcopy(cond.t5_tokenizer)
        new._setup_concepts()
        return new

    def _setup_concepts(self) -> None:
        self.t5.requires_grad_(False)  # gradients flow through T5 to the rows, never into it
        self.base_vocab = len(self.t5_tokenizer)
        self.concept_tokens: tp.Dict[str, tp.List[str]] = {}
        table = self.t5.get_input_embeddings().weight
        self.concept_embeds = nn.Parameter(table.new_zeros(0, table.shape[1]))
        # A checkpoint written before concepts existed (a text2music LM used as continue_from) has
        # no `concept_embeds`, and one whose concepts this model was not built with (an XP loaded
        # for generation) has rows for other tokens: keep this model's rows instead of failing a
        # strict load; concepts come in by name through od.conditioners.concepts.load_concepts.
        self._register_load_state_dict_pre_hook(self._fill_missing_rows)

    def _fill_missing_rows(self, state_dict, prefix, *args, **kwargs) -> None:
        key = prefix + 'concept_embeds'
        if key not in state_dict or state_dict[key].shape != self.concept_embeds.shape:
            state_dict[key] = self.concept_embeds.detach().clone()

    @property
    def concepts(self) -> tp.List[str]:
        return list(self.concept_tokens)

    def add_concept(self, concept: str, tokens_num: int = 5, init_noise: float = 0.1,
                    rows: tp.Optional[torch.Tensor] = None) -> None:
        """Add `tokens_num` tokens for `concept`; rows [tokens_num, D_t5] or mean + noise.

        A concept already present gets its rows replaced (same token count required).
        """
        table = self.t5.get_input_embeddings().weight.detach()  # [V, D_t5]
        if rows is None:
            noise = torch.randn(tokens_num, table.shape[1], device=table.device) * table.std() * init_noise
            rows = table.mean(0, keepdim=True) + noise
        rows = rows.to(table).detach()
        if rows.shape[1] != table.shape[1]:
            raise ValueError(f"concept '{concept}' rows are {rows.shape[1]} wide but this T5 ({self.name}) "
                             f"embeds in {table.shape[1]} dimensions: they were learned with another T5.")
        data = self.concept_embeds.data
        if concept in self.concept_tokens:
            idx = self._row_indices(concept)
            if len(idx) != rows.shape[0]:
                raise ValueError(f"concept '{concept}' has {len(idx)} tokens here, {rows.shape[0]} given.")
            data[idx] = rows.to(data)
            return
        tokens = concept_token_names(concept, rows.shape[0])
        clash = [t for t in tokens if t in self.t5_tokenizer.get_vocab()]
        if clash:
            raise ValueError(f"tokens {clash} already exist in the tokenizer of {self.name}.")
        self.t5_tokenizer.add_tokens(tokens, special_tokens=True)
        self.concept_tokens[concept] = tokens
        # A new Parameter (the optimizer, if any, is built after concepts are added).
        self.concept_embeds = nn.Parameter(torch.cat([data, rows.to(data)], 0),
                                           requires_grad=self.concept_embeds.requires_grad)

    def _row_indices(self, concept: str) -> tp.List[int]:
        ids = self.t5_tokenizer.convert_tokens_to_ids(self.concept_tokens[concept])
        return [i - self.base_vocab for i in ids]

    def concept_rows(self) -> tp.Dict[str, torch.Tensor]:
        """concept -> its learned rows [tokens_num, D_t5] (detached, on CPU)."""
        return {c: self.concept_embeds.detach()[self._row_indices(c)].cpu().clone() for c in self.concept_tokens}

    def expand(self, text: str) -> str:
        """`<8bit>` -> `<8bit_0> ... <8bit_{n-1}>` for every known concept; other text unchanged."""
        def sub(match: 're.Match[str]') -> str:
            tokens = self.concept_tokens.get(match.group(1))
            return ' '.join(tokens) if tokens else match.group(0)
        return PLACEHOLDER.sub(sub, text)

    def tokenize(self, x: tp.List[tp.Optional[str]]) -> tp.Dict[str, torch.Tensor]:
        return super().tokenize([None if xi is None else self.expand(xi) for xi in x])

    def forward(self, inputs: tp.Dict[str, torch.Tensor]) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        ids, mask = inputs['input_ids'], inputs['attention_mask']  # [B, L]
        table = self.t5.get_input_embeddings().weight
        is_new = ids >= self.base_vocab
        rows = table[ids.masked_fill(is_new, 0)]  # [B, L, D_t5], frozen
        if is_new.any():
            new = self.concept_embeds.to(rows)[(ids - self.base_vocab).clamp(min=0)]
            rows = torch.where(is_new.unsqueeze(-1), new, rows)
        with self.autocast:
            embeds = self.t5(inputs_embeds=rows, attention_mask=mask).last_hidden_state
        embeds = self.output_proj(embeds.to(self.output_proj.weight))
        return embeds * mask.unsqueeze(-1), mask
