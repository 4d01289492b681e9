import GuestMemory
import KVM
import X86

/// Code on a page KVM sees absent (`Machine.protectMemory`: a watched page that also holds
/// code). KVM cannot fetch an instruction from what it takes for MMIO: on this host (PVM) it
/// reports an emulation failure at the instruction. The interpreter twin runs from there,
/// reading RAM itself and comparing every access with the vCPU's memory watches (the twin's
/// watch ranges), until the code leaves the absent pages, a watch is hit or `limit` steps.
extension Machine {
  /// Runs KVM vCPU `vcpu` in its interpreter twin from where it stands, at most `limit` steps,
  /// going on while the next instruction's first byte is on a page absent to KVM and
  /// `goOn(linearPC)` agrees (the caller's breakpoints), and no watch was hit. Returns the
  /// steps, the outcome that ends the machine if the guest ended it, and the watch hits.
  public func runAbsentCode(_ vcpu: VCPU, limit: UInt64, while goOn: (UInt64) -> Bool) throws -> (
    steps: UInt64, outcome: RunOutcome?, hits: [MemoryAccessHit]
  ) {
    let assist = assist(for: vcpu)
    let absent = memoryProtection.absent
    var pages = CodePageCache()
    let (steps, outcome) = try assist.run(instructions: limit, carryingTime: false) { cpu in
      guard cpu.watchHits.isEmpty else { return false }
      let pc = cpu.linearPC
      guard let physical = pages.physicalPage(of: pc, cpu.pagingRegisters, memory) else { return false }
      return absent.contains(physical) && goOn(pc)
    }
    return (steps, ending(outcome, vcpu), assist.twin.takeMemoryAccessHits())
  }

  /// The watch hits the twin recorded for instructions it completed for KVM (emulation
  /// failures, steps), oldest first; clears them.
  public func takeAssistWatchHits(_ vcpu: VCPU) -> [MemoryAccessHit] {
    interpreterTwin(for: vcpu.id).takeMemoryAccessHits()
  }

  /// Gives KVM vCPU `vcpu`'s interpreter twin these memory watches, so instructions it runs
  /// for KVM (on pages absent to KVM, or that KVM cannot run) are compared with them.
  /// Nothing changes when the twin has them already (an instruction fetch hit it reported is
  /// then not reported again when the instruction runs).
  public func setAssistMemoryWatches(_ watches: [MemoryWatch], for vcpu: VCPU) {
    let twin = interpreterTwin(for: vcpu.id)
    guard twin.memoryWatches != watches else { return }
    twin.setMemoryWatches(watches)
    _ = twin.takeMemoryAccessHits()
  }
}

/// The last code page translated, for the run above: one page walk per page, not per step,
/// and the paging registers read in place (a copy of the whole state per step costs more
/// than the step).
private struct CodePageCache {
  var linear: UInt64 = 1  // no page starts at 1
  var cr3: UInt64 = 0
  var physical: UInt64 = 0

  mutating func physicalPage(
    of pc: UInt64, _ state: (cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64), _ memory: GuestRAM
  ) -> UInt64? {
    let page = pc >> 12
    if page == linear && state.cr3 == cr3 { return physical }
    let walker = PageWalker(
      memory: memory, mode: PagingMode(cr0: state.cr0, cr3: state.cr3, cr4: state.cr4, efer: state.efer))
    guard let address = try? walker.translate(pc) else { return nil }
    (linear, cr3, physical) = (page, state.cr3, address.value >> 12)
    return physical
  }
}
