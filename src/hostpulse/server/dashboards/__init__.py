"""Custom dashboards ("boards"): widgets on a grid, saved per owner and shared read-only or
editable. ``service.DashboardService`` decides who may do what; ``repository`` is the only SQL."""
