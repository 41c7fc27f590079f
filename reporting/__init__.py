"""Text shared by every report the project writes: tables and the machine a run was measured on."""
