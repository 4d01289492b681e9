/// What the event-counting guests print, worked out from their sources (each handler counts
/// its own entries; the architecture fixes how many there are). The same whether or not a
/// debugger steps the guest.
public enum ExpectedOutput {
  /// Guests/tests/long_events.S: five #DB from the guest's own TF stepping (the instructions
  /// from the first after the POPF that sets TF through the POPF that clears it), one of each
  /// other event, and TF never visible in PUSHF or a fault frame.
  public static let longEvents = """
    db=00000005
    bp=00000001
    int40=00000001
    ud=00000001
    de=00000001
    gp=00000001
    pf=00000001
    pushf_tf=00000000
    frame_tf=00000000

    """

  /// Guests/tests/protected_events.S: the same events in 32-bit protected mode (no #PF).
  public static let protectedEvents = """
    db=00000005
    bp=00000001
    int40=00000001
    ud=00000001
    de=00000001
    gp=00000001

    """
}
