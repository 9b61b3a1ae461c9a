"""A tiny vision-language model: patch encoder + projector + a causal char LM, LLaVA-style.

LLaVA (Liu et al. 2023, "Visual Instruction Tuning", arXiv:2304.08485; LLaVA-1.5, arXiv:2310.03744) connects
a vision encoder to a language model with a small **projector**: the image is cut into patches, each patch is
encoded to a feature vector, the projector maps every feature into the LM's token-embedding space, and the
projected patches are fed to the LM as a prefix, in front of the embedded text prompt,

    x = [ W_proj(enc(patch_1) + pos_1), ..., W_proj(enc(patch_n) + pos_n),  E[q_1], ..., E[q_m] ],

after which the LM decodes its answer as usual. Here the encoder is a two-layer MLP on the raw pixels of each
patch plus a learned position per patch (a ViT without attention), the projector LLaVA-1.5's two-layer MLP, and
the LM a ``tiny_model`` Llama.

The image arrives inside the prompt as pixel tokens (``rl4lrm.vision.task``); ``embed_prompt`` turns them back
into RGB, so ``VisionLM`` defines the two hooks of ``rl4lrm.rollout`` and the ordinary ``Trainer`` runs GRPO on
it: ``sample_rollout`` prefills the image + question and samples the answer with a KV cache;
``completion_logits`` recomputes the same logits in one forward, with gradients into the LM, the projector and
the encoder alike. ``tests/test_vision.py`` checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedTokenizerFast

from rl4lrm.decoding import cache_kwargs, decode_loop, positions_from_mask, trim_pad_columns
from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.rollout import RolloutBatch
from rl4lrm.utils import eval_mode
from rl4lrm.validation import AT_LEAST_ONE, check_fields, named_keywords
from rl4lrm.vision.task import PALETTE, PIXEL_TOKENS


@named_keywords()
@dataclass
class VisionConfig:
    """Shape of the vision side of a ``VisionLM`` (saved next to the checkpoint)."""

    image_size: int = 12
    """S: image side in pixels (the task's ``grid * cell``); the prompt carries S * S pixel tokens."""
    patch_size: int = 4
    """p: patch side in pixels; S must be a multiple of p, giving (S / p)^2 patches (9 by default)."""
    encoder_dim: int = 64
    """Width of the patch encoder's features (before the projector)."""

    def __post_init__(self):
        check_fields(self, {"image_size": AT_LEAST_ONE, "patch_size": AT_LEAST_ONE, "encoder_dim": AT_LEAST_ONE})
        if self.image_size % self.patch_size:
            raise ValueError(
                f"VisionConfig.patch_size={self.patch_size} must divide image_size={self.image_size}; choose one of "
                f"{[p for p in range(1, self.image_size + 1) if self.image_size % p == 0]}"
            )

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def vision_tokenizer() -> PreTrainedTokenizerFast:
    """``char_tokenizer()`` plus one special token per palette colour (``<p0>`` .. ``<p4>``; other ids unchanged)."""
    tokenizer = char_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": PIXEL_TOKENS})
    return tokenizer


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cuts images into non-overlapping square patches, row-major, each flattened (row, column, channel).

    Args:
        images: (N, S, S, C) pixels, channels last.
        patch_size: p, dividing S.

    Returns:
        (N, (S/p)^2, p * p * C) patch vectors; patch i covers rows (i // (S/p)) * p ... and columns (i % (S/p)) * p ...
    """
    N, S, _, C = images.shape
    n = S // patch_size
    x = images.reshape(N, n, patch_size, n, patch_size, C)  # (N, row block, dy, col block, dx, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(N, n * n, patch_size * patch_size * C)  # (N, n^2, p*p*C)


class VisionLM(torch.nn.Module):
    """Image patches, projected into a causal LM's embedding space, as a prefix to the text prompt.

    Args:
        net: a Hugging Face Llama-style causal LM (``net.model`` gives final-norm hidden states, ``net.lm_head``
            the logits) whose vocabulary includes the pixel tokens.
        tokenizer: a ``vision_tokenizer()``.
        config: the ``VisionConfig``.
    """

    def __init__(self, net, tokenizer, config: VisionConfig | None = None):
        super().__init__()
        self.net, self.config = net, config or VisionConfig()
        ids = tokenizer.convert_tokens_to_ids(PIXEL_TOKENS)
        if ids != list(range(ids[0], ids[0] + len(ids))):
            raise ValueError(f"the pixel tokens must have consecutive ids, got {ids} (use vision_tokenizer())")
        self.pixel0 = ids[0]
        self.register_buffer("palette", torch.tensor(PALETTE), persistent=False)  # (K, 3)
        cfg, hidden = self.config, net.config.hidden_size
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(cfg.patch_size**2 * 3, cfg.encoder_dim),
            torch.nn.GELU(),
            torch.nn.Linear(cfg.encoder_dim, cfg.encoder_dim),
        )
        self.patch_pos = torch.nn.Parameter(0.02 * torch.randn(cfg.n_patches, cfg.encoder_dim))
        self.projector = torch.nn.Sequential(
            torch.nn.Linear(cfg.encoder_dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, hidden)
        )

    def images(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        """The RGB images carried by the prompts' pixel tokens, (N, S, S, 3)."""
        is_pixel = self._pixel_positions(prompt_ids, prompt_mask)
        S = self.config.image_size
        return self.palette[(prompt_ids[is_pixel] - self.pixel0).view(-1, S, S)]  # (N, S, S, 3)

    def _pixel_positions(self, prompt_ids, prompt_mask) -> torch.Tensor:
        K = len(PIXEL_TOKENS)
        is_pixel = (prompt_ids >= self.pixel0) & (prompt_ids < self.pixel0 + K) & prompt_mask.bool()  # (N, P)
        counts = is_pixel.sum(1)
        if not bool((counts == self.config.image_size**2).all()):
            raise ValueError(
                f"every prompt must carry image_size^2 = {self.config.image_size**2} pixel tokens, got counts "
                f"{sorted(set(counts.tolist()))}"
            )
        return is_pixel

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(N, S, S, 3) images -> (N, n_patches, H) projected patch embeddings (the LM's input space)."""
        patches = patchify(images, self.config.patch_size)  # (N, n, p*p*3)
        return self.projector(self.encoder(patches) + self.patch_pos)  # (N, n, H)

    def embed_prompt(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor):
        """Input embeddings and mask of image-prefixed prompts.

        Args:
            prompt_ids, prompt_mask: (N, P) left-padded prompts, each ``S * S`` pixel tokens then the question.

        Returns:
            ``embeds`` (N, n + P - S*S, H): the projected patches, then the question's (left-padded) token
            embeddings; ``mask`` (N, n + P - S*S), 0 on the padding (which sits between image and question;
            positions come from the mask, so it changes nothing).
        """
        is_pixel = self._pixel_positions(prompt_ids, prompt_mask)
        N, P = prompt_ids.shape
        S2 = self.config.image_size**2
        image = self.encode_image(
            self.palette[(prompt_ids[is_pixel] - self.pixel0).view(N, self.config.image_size, -1)]
        )
        text_ids = prompt_ids[~is_pixel].view(N, P - S2)  # (N, P - S^2) still left-padded
        text_mask = prompt_mask[~is_pixel].view(N, P - S2)
        embeds = torch.cat([image, self.net.get_input_embeddings()(text_ids)], dim=1)  # (N, L, H)
        mask = torch.cat([torch.ones_like(text_mask[:, :1]).expand(N, image.shape[1]), text_mask], dim=1)  # (N, L)
        return embeds, mask

    def forward(self, prompt_ids, prompt_mask, completion_ids, completion_mask) -> torch.Tensor:
        """Teacher-forced logits (N, T, V) float32 predicting each completion token (SFT and RL recomputation).

        Args:
            prompt_ids, prompt_mask: (N, P) left-padded image + question prompts.
            completion_ids, completion_mask: (N, T) right-padded completions, mask 1 on real tokens.
        """
        embeds, mask = self.embed_prompt(prompt_ids, prompt_mask)
        L, T = embeds.shape[1], completion_ids.shape[1]
        embeds = torch.cat([embeds, self.net.get_input_embeddings()(completion_ids)], dim=1)  # (N, L + T, H)
        mask = torch.cat([mask, completion_mask.long()], dim=1)
        h = self.net.model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions_from_mask(mask), use_cache=False
        ).last_hidden_state
        return self.net.lm_head(h[:, L - 1 : L - 1 + T]).float()  # (N, T, V)

    # ------------------------------------------------------------------ rl4lrm.rollout hooks
    @torch.no_grad()
    def sample_rollout(
        self, tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
    ) -> RolloutBatch:
        """Prefills image + question with a KV cache, then samples ``group_size`` answers per prompt."""
        with eval_mode(self):
            p_ids = prompt_ids.repeat_interleave(group_size, 0)  # (N, P)
            p_mask = prompt_mask.repeat_interleave(group_size, 0)
            N = p_ids.shape[0]
            embeds, mask = self.embed_prompt(p_ids, p_mask)
            cache = DynamicCache()
            h = self.net.model(
                inputs_embeds=embeds,
                attention_mask=mask,
                position_ids=positions_from_mask(mask),
                **cache_kwargs(self.net.model, cache),
                use_cache=True,
            ).last_hidden_state
            embed = self.net.get_input_embeddings()

            def step(tok, t):  # feeds the tokens just sampled, returns the next logits (N, V)
                nonlocal mask
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                out = self.net.model(
                    inputs_embeds=embed(tok[:, None]),
                    attention_mask=mask,
                    position_ids=positions_from_mask(mask)[:, -1:],
                    **cache_kwargs(self.net.model, cache),
                    use_cache=True,
                )
                return self.net.lm_head(out.last_hidden_state[:, -1]).float()

            ids, logps, resp, truncated = decode_loop(
                step,
                self.net.lm_head(h[:, -1]).float(),
                N,
                max_new_tokens,
                tokenizer.eos_token_id,
                tokenizer.pad_token_id,
                temperature,
                top_p,
                generator,
            )
            resp, ids, logps = trim_pad_columns(resp, ids, logps)
        return RolloutBatch(
            prompt_ids=p_ids,
            prompt_mask=p_mask,
            completion_ids=ids,
            response_mask=resp,
            old_logprobs=logps,
            group_ids=torch.arange(len(prompt_ids), device=ids.device).repeat_interleave(group_size),
            truncated=truncated,
            completions=tokenizer.batch_decode(ids, skip_special_tokens=True),
            group_size=group_size,
            temperature=temperature,
        )

    def completion_logits(self, batch: RolloutBatch, temperature: float):
        """The batch's logits recomputed in one forward (with gradients), divided by ``temperature``.

        Returns:
            ``logits`` (N, T, V) float32 and their logsumexp (N, T).
        """
        logits = self(batch.prompt_ids, batch.prompt_mask, batch.completion_ids, batch.response_mask) / temperature
        return logits, torch.logsumexp(logits, dim=-1)


def new_vision_model(tokenizer, config: VisionConfig | None = None, preset: str = "micro", seed: int = 0) -> VisionLM:
    """A randomly initialised ``VisionLM`` on a ``tiny_model`` Llama of ``preset`` (seeded, float32, eval mode)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = VisionLM(tiny_model(preset, tokenizer, seed=seed), tokenizer, config)
    return model.float().eval()


def vision_state(model: VisionLM) -> dict[str, torch.Tensor]:
    """The encoder's and projector's tensors (what ``net.save_pretrained`` does not save)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("net.")}
