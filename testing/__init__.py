"""Test support shared by service/, infra/ and scripts/ tests: real local stand-ins for cloud services."""
