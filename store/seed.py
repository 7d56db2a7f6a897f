"""Example SOPs that make a fresh installation usable at once."""

from store.sops import SopCatalog, SopDefinition

SEED_PUBLISHER = "system:seed"

LOTO_PRESS_7 = SopDefinition.model_validate(
    {
        "id": "loto-press-7",
        "title": "Lockout/Tagout: Press 7",
        "description": (
            "Energy control for the 250 t hydraulic stamping press 7 before die change, "
            "cleaning or maintenance inside the guarding. Follows energy control "
            "procedure EC-P7. Every person working inside the guarding applies a personal lock."
        ),
        "steps": [
            {
                "id": "prepare",
                "title": "Prepare the shutdown",
                "instructions": (
                    "Tell the operators and the area lead that press 7 is going down for "
                    "lockout. Review EC-P7 and identify every energy source: 480 V main "
                    "supply, hydraulic accumulator, shop air at the clutch valve, and the "
                    "weight of the ram."
                ),
                "checks": [
                    {
                        "id": "affected-notified",
                        "prompt": "Operators and area lead notified of the lockout",
                        "kind": "confirm",
                    },
                    {
                        "id": "energy-sources-reviewed",
                        "prompt": "EC-P7 reviewed and all four energy sources identified",
                        "kind": "confirm",
                    },
                ],
            },
            {
                "id": "shutdown",
                "title": "Shut the press down",
                "instructions": (
                    "Stop the press with the normal stop sequence at the console. Lower the "
                    "ram to bottom dead center, or place the die safety blocks under it if "
                    "the die must stay open."
                ),
                "checks": [
                    {
                        "id": "normal-stop",
                        "prompt": "Press stopped with the normal stop sequence",
                        "kind": "confirm",
                    },
                    {
                        "id": "ram-secured",
                        "prompt": "Ram at bottom dead center or resting on die safety blocks",
                        "kind": "confirm",
                    },
                ],
            },
            {
                "id": "isolate",
                "title": "Isolate and lock every energy source",
                "instructions": (
                    "Open main disconnect DS-7 and apply your personal lock and tag. Close "
                    "and lock air valve AV-7 at the drop. Attach the group lock box key to "
                    "the work order if several people work inside."
                ),
                "checks": [
                    {
                        "id": "breaker-off",
                        "prompt": "Main disconnect DS-7 off, locked and tagged",
                        "kind": "confirm",
                    },
                    {
                        "id": "air-valve-locked",
                        "prompt": "Air valve AV-7 closed, locked and tagged",
                        "kind": "confirm",
                    },
                    {
                        "id": "lock-photo",
                        "prompt": "Photo of the applied locks attached to the work order",
                        "kind": "confirm",
                        "required": False,
                    },
                ],
            },
            {
                "id": "dissipate",
                "title": "Release stored energy",
                "instructions": (
                    "Open bleed valve HV-3 until the accumulator gauge stops falling. Vent "
                    "the clutch air line through the exhaust valve. Read both gauges."
                ),
                "checks": [
                    {
                        "id": "accumulator-pressure",
                        "prompt": "Hydraulic accumulator pressure after bleeding",
                        "kind": "measurement",
                        "unit": "bar",
                        "min": 0,
                        "max": 1,
                    },
                    {
                        "id": "clutch-air-pressure",
                        "prompt": "Clutch air line pressure after venting",
                        "kind": "measurement",
                        "unit": "bar",
                        "min": 0,
                        "max": 0.1,
                    },
                ],
            },
            {
                "id": "verify",
                "title": "Verify zero energy",
                "instructions": (
                    "Make sure everyone is clear, then press the start buttons: the press "
                    "must not move. Test your voltage tester on a known live source, measure "
                    "at the main motor terminals, then test the tester again."
                ),
                "checks": [
                    {
                        "id": "try-start",
                        "prompt": "Start attempted: the press did not move",
                        "kind": "confirm",
                    },
                    {
                        "id": "tester-proven",
                        "prompt": "Voltage tester proven on a live source before and after",
                        "kind": "confirm",
                    },
                    {
                        "id": "residual-v",
                        "prompt": "Residual voltage at the main motor terminals",
                        "kind": "measurement",
                        "unit": "V",
                        "min": 0,
                        "max": 5,
                    },
                ],
            },
        ],
    }
)

CONFINED_SPACE_ENTRY = SopDefinition.model_validate(
    {
        "id": "confined-space-entry",
        "title": "Confined Space Entry: Tank T-12",
        "description": (
            "Permit-required entry into mixing tank T-12 for inspection or cleaning. "
            "Entry is allowed only with a signed permit, an attendant outside the "
            "manway for the whole entry, and an atmosphere within the limits below."
        ),
        "steps": [
            {
                "id": "permit",
                "title": "Permit and roles",
                "instructions": (
                    "Get the entry permit signed by the entry supervisor. Name the attendant, "
                    "who stays at the manway and never enters. Confirm the rescue plan and "
                    "that the tripod and winch are on site."
                ),
                "checks": [
                    {
                        "id": "permit-signed",
                        "prompt": "Entry permit signed by the entry supervisor",
                        "kind": "confirm",
                    },
                    {
                        "id": "attendant-assigned",
                        "prompt": "Attendant assigned and present at the manway",
                        "kind": "confirm",
                    },
                    {
                        "id": "rescue-ready",
                        "prompt": "Rescue plan reviewed, tripod and winch set up",
                        "kind": "confirm",
                    },
                    {
                        "id": "radio-check",
                        "prompt": "Radio check between entrant and attendant done",
                        "kind": "confirm",
                    },
                ],
            },
            {
                "id": "isolate",
                "title": "Isolate the tank",
                "instructions": (
                    "Blind or disconnect the product inlet and the outlet line. Lock out the "
                    "agitator motor at its disconnect and try to start it."
                ),
                "checks": [
                    {
                        "id": "lines-blinded",
                        "prompt": "Inlet and outlet lines blinded or disconnected",
                        "kind": "confirm",
                    },
                    {
                        "id": "agitator-locked",
                        "prompt": "Agitator locked out and start attempt failed",
                        "kind": "confirm",
                    },
                ],
            },
            {
                "id": "ventilate",
                "title": "Ventilate",
                "instructions": (
                    "Run the forced-air blower into the lower manway for at least 20 minutes "
                    "before testing, and keep it running during the entry."
                ),
                "checks": [
                    {
                        "id": "blower-running",
                        "prompt": "Blower running with duct placed in the lower manway",
                        "kind": "confirm",
                    },
                    {
                        "id": "ventilation-time",
                        "prompt": "Ventilation time before atmosphere testing",
                        "kind": "measurement",
                        "unit": "min",
                        "min": 20,
                    },
                ],
            },
            {
                "id": "atmosphere",
                "title": "Test the atmosphere",
                "instructions": (
                    "Bump-test the four-gas meter, then sample at the top, middle and bottom "
                    "of the tank from outside. Record the worst reading of each gas."
                ),
                "checks": [
                    {
                        "id": "meter-bump-tested",
                        "prompt": "Four-gas meter bump-tested today",
                        "kind": "confirm",
                    },
                    {
                        "id": "o2",
                        "prompt": "Oxygen",
                        "kind": "measurement",
                        "unit": "%",
                        "min": 19.5,
                        "max": 23.5,
                    },
                    {
                        "id": "lel",
                        "prompt": "Flammable gas",
                        "kind": "measurement",
                        "unit": "% LEL",
                        "max": 10,
                    },
                    {
                        "id": "h2s",
                        "prompt": "Hydrogen sulfide",
                        "kind": "measurement",
                        "unit": "ppm",
                        "max": 10,
                    },
                    {
                        "id": "co",
                        "prompt": "Carbon monoxide",
                        "kind": "measurement",
                        "unit": "ppm",
                        "max": 35,
                    },
                ],
            },
            {
                "id": "entry",
                "title": "Enter",
                "instructions": (
                    "Wear the full-body harness clipped to the retrieval line and a personal "
                    "gas monitor. Log every entry and exit on the permit."
                ),
                "checks": [
                    {
                        "id": "harness-attached",
                        "prompt": "Harness attached to the retrieval line",
                        "kind": "confirm",
                    },
                    {
                        "id": "personal-monitor-on",
                        "prompt": "Personal gas monitor on and alarming correctly",
                        "kind": "confirm",
                    },
                    {
                        "id": "entry-logged",
                        "prompt": "Entry time written on the permit",
                        "kind": "confirm",
                        "required": False,
                    },
                ],
            },
        ],
    }
)

FORKLIFT_PRESHIFT = SopDefinition.model_validate(
    {
        "id": "forklift-preshift",
        "title": "Forklift Pre-Shift Inspection",
        "description": (
            "Daily inspection of an electric counterbalance forklift before the first use "
            "of each shift. A truck that fails a required check is tagged out of service "
            "and reported to maintenance."
        ),
        "steps": [
            {
                "id": "walk-around",
                "title": "Walk-around inspection",
                "instructions": (
                    "With the truck parked, forks lowered and key out, walk around it. Look "
                    "for leaks under the truck, cracks in the forks, damaged or loose chains, "
                    "and damage to the mast and the overhead guard."
                ),
                "checks": [
                    {
                        "id": "no-leaks",
                        "prompt": "No hydraulic or battery leaks under the truck",
                        "kind": "confirm",
                    },
                    {
                        "id": "forks-intact",
                        "prompt": "Forks free of cracks and bends, locking pins in place",
                        "kind": "confirm",
                    },
                    {
                        "id": "fork-heel-wear",
                        "prompt": "Fork heel wear compared with the shank thickness",
                        "kind": "measurement",
                        "unit": "%",
                        "min": 0,
                        "max": 10,
                    },
                    {
                        "id": "chains-mast",
                        "prompt": "Lift chains, mast and overhead guard undamaged",
                        "kind": "confirm",
                    },
                    {
                        "id": "data-plate",
                        "prompt": "Capacity data plate present and readable",
                        "kind": "confirm",
                        "required": False,
                    },
                ],
            },
            {
                "id": "tires",
                "title": "Tires",
                "instructions": (
                    "Check the pneumatic front tires with a gauge when cold. Look for cuts, "
                    "chunking and embedded objects on all tires."
                ),
                "checks": [
                    {
                        "id": "tire-pressure-left",
                        "prompt": "Front left tire pressure",
                        "kind": "measurement",
                        "unit": "psi",
                        "min": 95,
                        "max": 110,
                    },
                    {
                        "id": "tire-pressure-right",
                        "prompt": "Front right tire pressure",
                        "kind": "measurement",
                        "unit": "psi",
                        "min": 95,
                        "max": 110,
                    },
                    {
                        "id": "tire-condition",
                        "prompt": "No cuts, chunking or embedded objects on any tire",
                        "kind": "confirm",
                    },
                ],
            },
            {
                "id": "battery",
                "title": "Battery and fluids",
                "instructions": (
                    "Read the battery discharge indicator after switching on. Check that the "
                    "battery connector is fully seated and the hydraulic oil is between the "
                    "marks on the dipstick."
                ),
                "checks": [
                    {
                        "id": "battery-charge",
                        "prompt": "Battery state of charge",
                        "kind": "measurement",
                        "unit": "%",
                        "min": 30,
                    },
                    {
                        "id": "battery-connector",
                        "prompt": "Battery connector fully seated, cables undamaged",
                        "kind": "confirm",
                    },
                    {
                        "id": "hydraulic-oil",
                        "prompt": "Hydraulic oil between the dipstick marks",
                        "kind": "confirm",
                        "required": False,
                    },
                ],
            },
            {
                "id": "function-test",
                "title": "Function test",
                "instructions": (
                    "Fasten the seat belt and test in a clear area: horn, service brake, "
                    "parking brake on a slope, steering lock to lock, lift, lower and tilt, "
                    "the travel alarm and the lights."
                ),
                "checks": [
                    {
                        "id": "seat-belt",
                        "prompt": "Seat belt latches and releases",
                        "kind": "confirm",
                    },
                    {"id": "horn", "prompt": "Horn works", "kind": "confirm"},
                    {
                        "id": "brakes",
                        "prompt": "Service brake stops the truck smoothly and straight",
                        "kind": "confirm",
                    },
                    {
                        "id": "parking-brake",
                        "prompt": "Parking brake holds the loaded truck on the ramp",
                        "kind": "confirm",
                    },
                    {
                        "id": "hydraulics",
                        "prompt": "Lift, lower and tilt work without jerks or noise",
                        "kind": "confirm",
                    },
                    {
                        "id": "travel-alarm",
                        "prompt": "Reverse travel alarm sounds",
                        "kind": "confirm",
                    },
                    {
                        "id": "lights",
                        "prompt": "Work lights and blue spot light work (if fitted)",
                        "kind": "confirm",
                        "required": False,
                    },
                ],
            },
        ],
    }
)

EXAMPLE_SOPS = (LOTO_PRESS_7, CONFINED_SPACE_ENTRY, FORKLIFT_PRESHIFT)


async def seed_examples(catalog: SopCatalog) -> list[str]:
    """Publishes each example SOP whose id is not in the catalog yet; returns the ids added."""
    added = []
    for definition in EXAMPLE_SOPS:
        if await catalog.publish_if_new(definition, SEED_PUBLISHER) is not None:
            added.append(definition.id)
    return added
