"""Code that more than one framebus service uses: settings, wire format, health, logging."""
