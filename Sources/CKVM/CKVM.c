// Intentionally empty: CKVM is header-only; SwiftPM needs one source file.
