enum BuildCommand { static func run(_ a: ArraySlice<String>) throws {} }
enum PlanCommand { static func run(_ a: ArraySlice<String>) throws {} }
enum InspectCommand { static func run(_ a: ArraySlice<String>) throws {} }
enum VerifyCommand { static func run(_ a: ArraySlice<String>) throws {} }
