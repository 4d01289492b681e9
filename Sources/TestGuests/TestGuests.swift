// Guest images are generated into this module by the GuestBuilder plugin.
