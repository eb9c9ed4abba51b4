package service_test

// capPopGolden pins the dev/sign-device-cap-pop message (keccak256 of the
// text, before EIP-191) for the inputs of TestDeviceMethods.
const capPopGolden = "6418c9c4666d8298ab4cd40f6c86e22835355a934347bb0953a375f244a4f343"
