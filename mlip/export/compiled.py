"""Compiled inference and an exported artefact for simulation engines.

- `compile_potential(potential)`: a copy with the network under `torch.compile` (Inductor, dynamic shapes),
  for the ASE calculator and the torch-sim model (`compile=True` there). Forces and stress stay
  the autograd derivatives of the compiled energy.
- `export_energy_program(potential, path)`: a `torch.export` program (`.pt2`) of the energy as a
  function of species indices, positions, cell, edges and shifts, loadable with
  `torch.export.load` alone, no mlip classes; `ExportedPotential` is the 40-line reference of
  what an engine does with it (forces and stress by autograd, elements by a lookup table kept in
  the program's metadata).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from mlip.atomic_write import atomic_path
from mlip.models.potential import Potential, strained, stress_from_strain_gradient
from mlip.nn import tabulated_convolution as fused
from mlip.nn.message import EquivariantConvolution
from mlip.nn.product import ChannelwiseProduct
from mlip.nn.radial_table import RadialTables
from mlip.nn.segments import GrowingCompiledLayout


def compile_potential(potential: Potential, mode: str | None = None, radial_tables: bool = True,
                      fused_kernel: bool = True) -> Potential:
    """A copy of `potential` whose network runs under torch.compile (Inductor, dynamic shapes:
    any atom and edge count); weights are shared, the original is left as it is. For inference:
    save the original, not the copy (the compiled wrapper renames the weights).

    radial_tables: float32 calls with frozen weights evaluate each Bessel + MLP radial function from a quintic
    Hermite table of it (`mlip.nn.radial_table`: values and slopes within float32's rounding unit of the MLP's,
    rebuilt when the weights change); False runs the MLP.
    fused_kernel: float32 calls on a CPU with frozen weights run hand-fused C kernels (built on first use; without
    a C compiler Inductor's code runs instead): the product basis's channel-wise products (`mlip.nn.fused_product`)
    and, where the radial is tabulated, the convolutions' neighbour sums (`mlip.nn.tabulated_convolution`)."""
    compiled = copy.copy(potential)
    compiled._modules = dict(potential._modules)  # the copy's own module table: the original keeps its network
    compiled.network = CompiledNetwork(potential.network, mode, radial_tables, fused_kernel)
    return compiled


class CompiledNetwork(nn.Module):
    """`network` under torch.compile, with what a compiled graph cannot compute itself prepared
    eagerly before each call: the per-receiver neighbour layout (`GrowingCompiledLayout`, whose
    degree is data), for networks that take it (`segment_sums`), and the radial tables' refresh
    (`RadialTables`, with `radial_tables`). With `fused_kernel` its convolutions and channel-wise products are
    marked to run the hand-fused C kernels (`mlip/nn/kernels/`). Other attributes are the network's. Same call as the network: (species, edge_vectors, receivers, senders, **inputs)."""

    def __init__(self, network: nn.Module, mode: str | None = None, radial_tables: bool = False,
                 fused_kernel: bool = False):
        super().__init__()
        radial_tables = radial_tables and RadialTables.applies_to(network)
        if radial_tables or fused_kernel:  # tables and kernel flags go on a copy of the module tree (same weight
            # tensors): the original's radials, and the wrappers of other compiled copies, stay as they are
            network = copy.deepcopy(network, {id(t): t for t in (*network.parameters(), *network.buffers())})
            for module in network.modules():  # the C kernels where they build (convolutions: with a table)
                if isinstance(module, (EquivariantConvolution, ChannelwiseProduct)):
                    module.fused_kernel = fused_kernel
        self.network = network
        object.__setattr__(self, "_tables", RadialTables(network) if radial_tables else None)
        # not a submodule: the weights are listed once, under `network`
        object.__setattr__(self, "_compiled", torch.compile(network, dynamic=True, mode=mode, options=INDUCTOR_OPTIONS))
        object.__setattr__(self, "_layout", GrowingCompiledLayout(getattr(network, "segment_layout_required", False)))
        object.__setattr__(self, "_convolutions", [m for m in network.modules() if isinstance(m, EquivariantConvolution)
                                                   and m.fused_kernel])

    @property
    def accepts_edge_pairs(self) -> bool:
        """Whether the `Potential` should pair each edge with its reverse (`mlip.graph.edge_pairs`: a sort per
        call, ~1.5 ms at Si 512) so that radial MLPs run once per bond: not where every convolution reads its
        table per neighbour slot in the fused kernel (float32 weights on a CPU), which needs no pairs."""
        fused_everywhere = bool(self._convolutions) and all(
            getattr(conv.radial, "inference_table", None) is not None and conv.coupling_by_run.dtype == torch.float32
            and conv.coupling_by_run.device.type == "cpu" and fused.available(*conv.kernel_shape)
            for conv in self._convolutions)
        return not fused_everywhere and getattr(self.network, "accepts_edge_pairs", False)

    def forward(self, species: torch.Tensor, edge_vectors: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor, **inputs) -> torch.Tensor:
        if getattr(self.network, "segment_sums", False):
            inputs["segment_layout"] = self._layout(receivers, species.shape[0])
        if self._tables is not None:
            self._tables.refresh()
        return self._compiled(species, edge_vectors, receivers, senders, **inputs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("__") or "network" not in self.__dict__.get("_modules", {}):
                raise  # dunder lookups (copy, pickle) and a half-built object: no forwarding
            return getattr(self._modules["network"], name)


# Inductor writes a scatter-add (the backward of every gather of neighbour features) as atomic adds;
# partitioned, each thread adds into its own copy first (Si 512, medium model, 2 threads, one in-process
# measurement on 2026-12-06: 69 instead of 83 ms per compiled call)
INDUCTOR_OPTIONS = {"partitioned_scatter_enabled": True}


class EnergyFunction(nn.Module):
    """E_b = Σ_{i in b} [scale·ε_i + shift + E0(Z_i) (+ ZBL)] from tensors only (what is exported), summed in
    float64.

    Inputs: species (N,) int64 indices into the model's elements, positions (N, 3) Å, cell
    (B, 3, 3) Å, receivers/senders (E,) int64, shifts (E, 3) integer cell offsets (float),
    batch (N,) int64 structure of each atom, ptr (B + 1,) atom offsets → energies (B,) eV.
    """

    def __init__(self, potential: Potential):
        super().__init__()
        self.potential = potential

    def forward(self, species: torch.Tensor, positions: torch.Tensor, cell: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor, shifts: torch.Tensor, batch: torch.Tensor, ptr: torch.Tensor) -> torch.Tensor:
        p = self.potential
        edge_batch = batch.index_select(0, receivers)
        offsets = torch.einsum("ek,ekl->el", shifts, cell.index_select(0, edge_batch))
        vectors = positions.index_select(0, senders) - positions.index_select(0, receivers) + offsets
        node = p.network(species, vectors, receivers, senders)
        interaction = p.scale * node + p.shift
        if p.repulsion is not None:
            interaction = interaction + p.repulsion(species, vectors, receivers, senders)
        energy = torch.zeros_like(ptr[1:], dtype=torch.float64)  # totals in float64, as `Potential` sums them
        return energy.index_add(0, batch, interaction.double()).index_add(0, batch,
                                                                          p.reference.index_select(0, species).double())


def export_energy_program(potential: Potential, path: str | Path, example=None) -> Path:
    """Write `path` (.pt2): the energy function exported with dynamic atom, edge and structure
    counts, plus metadata (elements as atomic numbers, cutoff Å, dtype, units)."""
    from ase.build import bulk

    from mlip.graph.batch import GraphBatch
    from mlip.io import Frame

    potential = potential.eval()
    if getattr(potential.network, "uses_structure", False):
        raise ValueError(f"{type(potential.network).__name__} sees whole structures (positions, frames), which "
                         "the exported energy program does not pass; export works for the equivariant network")
    if getattr(potential.network, "segment_layout_required", False):
        raise ValueError("the transformer with attention='edge' needs each atom's edges laid out in padded rows, which "
                         "the exported energy program does not build; export the equivariant network or the "
                         "transformer with attention='neighbor' (compile_potential runs this one compiled)")
    if example is None:
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        numbers = [potential.atomic_numbers[k % len(potential.atomic_numbers)] for k in range(len(atoms))]
        frames = [Frame(numbers=numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=True)] * 2
        example = GraphBatch.from_frames(frames, potential.cutoff).to(dtype=potential.dtype, device=potential.device)
    args = _arguments(potential, example)
    atoms, edges, graphs = torch.export.Dim("atoms", min=2), torch.export.Dim("edges", min=2), torch.export.Dim("graphs", min=1)
    dynamic = ({0: atoms}, {0: atoms}, {0: graphs}, {0: edges}, {0: edges}, {0: edges}, {0: atoms}, {0: graphs + 1})
    from torch.fx.experimental import _config as shape_config

    with shape_config.patch(backed_size_oblivious=True):  # no 0/1 specialisation: one structure is a valid call
        program = torch.export.export(EnergyFunction(potential), args, dynamic_shapes=dynamic, strict=False)
    metadata = {"atomic_numbers": potential.atomic_numbers, "cutoff": potential.cutoff,
                "dtype": str(potential.dtype).removeprefix("torch."), "units": {"energy": "eV", "length": "Å"},
                "inputs": ["species", "positions", "cell", "receivers", "senders", "shifts", "batch", "ptr"]}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.export.save(program, tmp, extra_files={"mlip.json": json.dumps(metadata)})
    return path


def _arguments(potential: Potential, batch) -> tuple[torch.Tensor, ...]:
    return (potential.species(batch.numbers), batch.positions, batch.cell, batch.receivers, batch.senders,
            batch.shifts.to(batch.positions.dtype), batch.batch, batch.ptr)


class ExportedPotential:
    """Energies, forces and stress from an exported program (`export_energy_program`), with
    torch only (and mlip's two strain helpers, plain functions): what a simulation engine needs
    to do with the artefact.

    `__call__(numbers, positions, cell, receivers, senders, shifts, batch, ptr)` → energy (B,)
    eV, forces (N, 3) eV/Å, stress (B, 3, 3) eV/Å³ (ASE sign; NaN without a volume).
    """

    def __init__(self, path: str | Path):
        extra = {"mlip.json": ""}
        self.program = torch.export.load(str(path), extra_files=extra).module()
        self.metadata = json.loads(extra["mlip.json"])
        self.cutoff = float(self.metadata["cutoff"])
        table = torch.full((119,), -1, dtype=torch.long)
        table[torch.tensor(self.metadata["atomic_numbers"])] = torch.arange(len(self.metadata["atomic_numbers"]))
        self.species_of_z = table

    def __call__(self, numbers, positions, cell, receivers, senders, shifts, batch, ptr) -> dict[str, torch.Tensor]:
        species = self.species_of_z[numbers]
        if bool((species < 0).any()):
            raise ValueError(f"elements {sorted(set(numbers[species < 0].tolist()))} are not in this model "
                             f"({self.metadata['atomic_numbers']})")
        positions = positions.detach().requires_grad_(True)
        strained_positions, strained_cell, strain = strained(positions, cell, batch)
        energy = self.program(species, strained_positions, strained_cell, receivers, senders, shifts, batch, ptr)
        grad_positions, grad_strain = torch.autograd.grad(energy.sum(), [positions, strain])
        return {"energy": energy.detach(), "forces": -grad_positions,
                "stress": stress_from_strain_gradient(grad_strain, cell)}
