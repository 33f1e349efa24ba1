"""Training under torch.compile: energies, forces and stress whose derivatives are inside the compiled graph.

A force loss differentiates the forces, themselves derivatives of the energy, with respect to the
weights; torch.compile's autograd cannot differentiate a compiled graph twice (create_graph=True
through a compiled energy). Here the per-atom energies and their gradient with respect to the
edge vectors, g_e = ∂E/∂v_e (eV/Å, v_e = r_sender − r_receiver + shift·cell), are computed together
in one compiled function (torch.func.grad inside torch.compile), so the loss's backward is a
first-order backward through that graph. Forces and stress are assembled from the edge gradients:

    F_i = Σ_{e: receiver i} g_e − Σ_{e: sender i} g_e,    σ_b = ½ (W_b + W_bᵀ) / V_b,  W_b = Σ_{e∈b} v_e ⊗ g_e,

exactly the autograd derivatives of `Potential.forward` for every network whose energy depends on
positions only through its edge vectors (the equivariant network, the ZBL prior); networks that
see whole structures (the transformer: positions, frames) are refused. The ZBL prior runs eagerly
beside the compiled network: with it inside, Inductor (torch 2.13, CPU) returned wrong forces
(0.1 eV/Å off in float64 while `aot_eager` was exact). Because a compiler can be wrong, the first
call of every compiled graph (each degree bucket of the neighbour layout) is
checked against eager autograd; on a mismatch the potential runs eagerly from then on, with a warning.

Compiling is slow on a CPU (the medium model's graph: ~4 minutes on one core, cold Inductor cache),
so the number of graphs is kept down: the neighbour layout's degree only grows
(`GrowingCompiledLayout`), and calls without gradient (validation) run the training graph with
gradients enabled and detach what it returns, instead of compiling an inference graph of their own.

Random ops (the network's `dropout`) draw from torch's global generator inside the compiled graph as they do
eagerly (Inductor's `fallback_random`), and the first-call check replays the generator's state from before the
compiled call, so the check compares the same dropout masks.
"""

from __future__ import annotations

import copy
import time
import warnings

import torch

from mlip.export.compiled import INDUCTOR_OPTIONS
from mlip.graph.batch import GraphBatch
from mlip.graph.edge_pairs import edge_pairs
from mlip.models.potential import Potential, stress_from_strain_gradient
from mlip.nn.gather import plain_gathers
from mlip.nn.segments import GrowingCompiledLayout


def generator_state(device: torch.device) -> torch.Tensor:
    """The state of the default random generator that ops on `device` draw from."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def set_generator_state(device: torch.device, state: torch.Tensor) -> None:
    """Restore `generator_state(device)`."""
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


class CompiledForces:
    """`potential`'s energies (B,), per-atom energies (N,), forces (N, 3) and stress (B, 3, 3) under
    torch.compile (Inductor, dynamic atom and edge counts), differentiable with respect to the weights:
    `__call__(batch, stress)` returns what `potential(batch, forces=True, stress=stress,
    create_graph=True)` does (eV, eV/Å, eV/Å³; stress NaN without a volume). The weights are the
    potential's own (not copied); compiling happens on the first call."""

    def __init__(self, potential: Potential):
        if getattr(potential.network, "uses_structure", False):
            raise ValueError(f"{type(potential.network).__name__} sees whole structures (positions, frames), so its "
                             "forces are not sums of edge gradients; compiled training works for the equivariant "
                             "network: set model.compile false")
        self.potential = potential
        self.checked: set[tuple[int | None, bool]] = set()  # (layout degree, training mode) of graphs compared with eager
        self.layout = GrowingCompiledLayout(getattr(potential.network, "segment_layout_required", False))
        self.eager = False  # set when that comparison failed: every call is then `potential.forward`
        self._compiled = torch.compile(self._energies_and_edge_gradients, dynamic=True,
                                       options={**INDUCTOR_OPTIONS, "fallback_random": True})

    def __deepcopy__(self, memo: dict) -> "CompiledForces":
        # a copy compiles again for the copied weights (Lightning deep-copies the module for its EMA)
        return CompiledForces(copy.deepcopy(self.potential, memo))

    def _energies_and_edge_gradients(self, species: torch.Tensor, vectors: torch.Tensor, receivers: torch.Tensor,
                                     senders: torch.Tensor, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies without the reference energies (N,) eV and ∂E/∂v_e (E, 3) eV/Å, traced together."""
        p = self.potential

        def total(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            interaction = p.scale * p.network(species, v, receivers, senders, **inputs) + p.shift
            return interaction.sum(), interaction

        gradient, node_energy = torch.func.grad(total, has_aux=True)(vectors)
        return node_energy, gradient

    def __call__(self, batch: GraphBatch, stress: bool = False) -> dict[str, torch.Tensor]:
        p = self.potential
        if batch.positions.dtype != p.dtype:
            batch = batch.to(dtype=p.dtype)
        if self.eager or batch.receivers.shape[0] == 0:  # no edges: nothing to compile (a graph of its own otherwise)
            return p(batch, forces=True, stress=stress, create_graph=torch.is_grad_enabled())
        if not self.checked:
            from torch._inductor.runtime.cache_dir_utils import cache_dir

            print(f"compiled training: compiling the training graph (minutes on a first run on this machine; later "
                  f"runs of the same model reuse the compiler cache in {cache_dir()})", flush=True)
        start = time.perf_counter()
        random_state = generator_state(p.device)  # what the first-call check replays (dropout masks)
        try:
            with torch.enable_grad():  # one graph for training and validation: see the module's note
                out, graph = self._compiled_call(batch, stress)
            if not torch.is_grad_enabled():
                out = {key: value.detach() for key, value in out.items()}
        except torch._dynamo.exc.TorchDynamoException as error:  # e.g. no C++ compiler for Inductor on this machine
            warnings.warn(f"compiled training: torch.compile failed ({str(error).splitlines()[0][:200]}); training "
                          "continues eagerly (model.compile false avoids the attempt)", RuntimeWarning, stacklevel=2)
            self.eager = True
            return p(batch, forces=True, stress=stress, create_graph=torch.is_grad_enabled())
        # training and evaluation mode can be two graphs (dropout reads the mode): each is checked on its first call
        key = (graph, p.training)
        if key not in self.checked:
            print(f"compiled training: graph for neighbour degree {graph} ({'training' if p.training else 'evaluation'}"
                  f" mode) ready after {time.perf_counter() - start:.0f} s", flush=True)
            self.checked.add(key)
            self.eager = not self._agrees_with_eager(batch, out, stress, random_state)
            if self.eager:
                return p(batch, forces=True, stress=stress, create_graph=torch.is_grad_enabled())
        return out

    def _agrees_with_eager(self, batch: GraphBatch, out: dict[str, torch.Tensor], stress: bool,
                           random_state: torch.Tensor | None = None) -> bool:
        """Whether the compiled forces (and stress) equal eager autograd's to float rounding (relative to
        the largest value, 1e-4 in float32, 1e-9 in float64); warns when not. The eager call starts from the
        compiled call's `random_state` (the same dropout masks), if given; the generator then goes on where it was."""
        device = self.potential.device
        after = generator_state(device)
        if random_state is not None:
            set_generator_state(device, random_state)
        try:
            with torch.enable_grad():
                expected = self.potential(batch, forces=True, stress=stress, create_graph=False)
        finally:
            set_generator_state(device, after)
        tolerance = 1e-9 if self.potential.dtype == torch.float64 else 1e-4
        for key, unit in (("forces", "eV/Å"), ("stress", "eV/Å³"))[:1 + stress]:
            reference, got = expected[key].detach(), out[key].detach()
            finite = torch.isfinite(reference)  # stress of structures without a volume is NaN on both sides
            scale = float(reference[finite].abs().max()) + 1e-2 if finite.any() else 1.0
            error = float((got[finite] - reference[finite]).abs().max()) if finite.any() else 0.0
            if not error <= tolerance * scale:
                warnings.warn(f"compiled training: {key} differ from eager autograd by {error:.3g} {unit} (largest "
                              f"{scale:.3g} {unit}), a compiler error; training continues eagerly (model.compile "
                              "false avoids the compile)", RuntimeWarning, stacklevel=3)
                return False
        return True

    def _compiled_call(self, batch: GraphBatch, stress: bool) -> tuple[dict[str, torch.Tensor], int | None]:
        """The outputs, and which compiled graph made them (its layout degree)."""
        p = self.potential
        species = p.species(batch.numbers)
        num_atoms = species.shape[0]
        vectors = batch.edge_vectors()
        inputs: dict = {}
        if getattr(p.network, "accepts_edge_pairs", False):
            inputs["edge_pairs"] = edge_pairs(batch.receivers, batch.senders, batch.shifts, num_atoms)
        # the per-receiver layout, for networks that take it in training (`segment_sums_in_training`, default yes)
        if getattr(p.network, "segment_sums", False) and getattr(p.network, "segment_sums_in_training", True):
            inputs["segment_layout"] = self.layout(batch.receivers, num_atoms)
        with plain_gathers():
            interaction, gradient = self._compiled(species, vectors, batch.receivers, batch.senders, inputs)
        if p.repulsion is not None:  # eagerly: see the module's note
            leaf = vectors.detach().requires_grad_(True)
            with torch.enable_grad():  # no weights in the prior: its gradient needs no graph
                repulsion = p.repulsion(species, leaf, batch.receivers, batch.senders)
                (repulsion_gradient,) = torch.autograd.grad(repulsion.sum(), leaf)
            repulsion = repulsion.detach()
            interaction, gradient = interaction + repulsion, gradient + repulsion_gradient
        forces = gradient.new_zeros(num_atoms, 3).index_add(0, batch.receivers, gradient)
        forces = forces.index_add(0, batch.senders, -gradient)
        reference = p.reference.index_select(0, species)
        energy = torch.zeros(batch.num_graphs, dtype=torch.float64, device=forces.device)  # as Potential sums
        energy = energy.index_add(0, batch.batch, interaction.double()).index_add(0, batch.batch, reference.double())
        out = {"energy": energy, "node_energy": interaction + reference, "forces": forces}
        if stress:
            virial = vectors.new_zeros(batch.num_graphs, 3, 3).index_add(
                0, batch.edge_batch, vectors[:, :, None] * gradient[:, None, :])
            out["stress"] = stress_from_strain_gradient(0.5 * (virial + virial.transpose(1, 2)), batch.cell)
        layout = inputs.get("segment_layout")
        return out, None if layout is None else layout[1].shape[0]
